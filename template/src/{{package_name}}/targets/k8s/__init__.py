"""Kubernetes: the model server image on any cluster (EKS, AKS, GKE or your own), through the official
`kubernetes` client (the `k8s` extra). The cluster and its kubeconfig are yours; see the README."""
