"""akri.kube"""
