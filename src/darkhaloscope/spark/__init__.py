"""darkhaloscope.spark"""
