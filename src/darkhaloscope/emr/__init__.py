"""darkhaloscope.emr"""
