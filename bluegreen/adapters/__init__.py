"""Adapters to the outside world. Only modules in here import boto3, kubernetes or requests."""
