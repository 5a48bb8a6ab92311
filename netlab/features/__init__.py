"""One module per feature of the data plane. Each renders its part of a Plan into
kernel intents; `netlab.orchestrator` only sequences them."""
