"""akri.agent"""
