"""akri.webhook"""
