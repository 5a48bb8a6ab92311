"""Gateway API (gateway.networking.k8s.io): the objects, the lab's controller and its
data plane.

- api.py        the objects as written (GatewayClass, Gateway, HTTPRoute, ReferenceGrant),
                parsed and validated as the CRDs do (pure)
- controller.py what a Gateway API controller decides (pure): which classes and Gateways
                are served, listener and route status with the spec's conditions and
                reasons, and per Gateway the resolved configuration (dataplane.py)
- dataplane.py  the resolved configuration of one Gateway's data plane: what the proxy
                must do, independent of the proxy (the controller's output, the
                renderer's input)
- nginx.py      dataplane.GatewayConfig -> nginx.conf (pure)
"""
