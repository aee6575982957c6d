"""AWS: an EC2 inventory source and the protocol 41 check, over boto3.

boto3 is an optional extra (`pip install fleet-isatap[aws]`): nothing outside this package imports
it, and this package imports it only when used, so the core runs without it.
"""
