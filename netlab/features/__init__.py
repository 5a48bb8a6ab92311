"""One module per feature of the data plane. Each renders its part of a Plan into
kernel intents; `netlab.compile` assembles them and `netlab.converge` applies the difference."""
