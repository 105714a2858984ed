"""darkhaloscope.report"""
