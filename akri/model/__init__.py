"""akri.model"""
