"""akri.testing"""
