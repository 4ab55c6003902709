"""The core of nudgelab: what a trial is (model, loading, rules, design, assignment, event log).

No Flask, no pandas: the kiosk (``app``) and the statistics (``analysis``) build on this package.
"""
