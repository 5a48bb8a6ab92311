"""The lab agent's runtime: long-lived services that serve all of a lab's pods from one process."""
