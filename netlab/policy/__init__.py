"""NetworkPolicy semantics, kept apart from the kernel: the engine says what Kubernetes
allows; the probes (netlab.probe) say what the kernel did; `check` compares the two."""
