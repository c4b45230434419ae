"""bluegreen: move live traffic from one Kubernetes cluster to another with Route 53 weighted records.

Layers, from the inside out (imports only point inwards):

- ``bluegreen.core``: plans, weights, samples and verdicts. Pure: no I/O, no SDKs.
- ``bluegreen.adapters``: Route 53, HTTP probes, Kubernetes/ArgoCD, EKS. The only modules that import
  boto3, kubernetes or requests.
- ``bluegreen.cli``: the composition root. Wires adapters to the core and maps errors to exit codes.
"""

__version__ = "0.1.0"
