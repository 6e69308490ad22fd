"""Feedback (orchestrators): an orchestrator agent queues tasks for a pool of worker nodes,
watches their load through ``/metrics`` and scales the pool (local processes or a Kubernetes
Deployment) with an HPA-like autoscaler. It sits above ``node``: it forwards tasks with the
node's A2A client and starts workers with its launcher."""
