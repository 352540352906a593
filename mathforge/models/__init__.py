"""mathforge.models"""
