"""darkhaloscope.physics"""
