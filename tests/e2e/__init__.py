"""End-to-end helpers: real `akri` processes, the kubelet double, the API double, the official client."""
