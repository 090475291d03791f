"""akri.discovery"""
