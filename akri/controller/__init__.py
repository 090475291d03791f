"""akri.controller"""
