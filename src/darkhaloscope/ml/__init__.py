"""darkhaloscope.ml"""
