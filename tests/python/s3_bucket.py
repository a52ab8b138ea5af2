"""Creates a bucket on an S3-compatible server (used to prepare moto_server for tests)."""

import argparse

import boto3

parser = argparse.ArgumentParser()
parser.add_argument("--endpoint", required=True)
parser.add_argument("--bucket", required=True)
args = parser.parse_args()
s3 = boto3.client("s3", endpoint_url=args.endpoint, aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
s3.create_bucket(Bucket=args.bucket)
print(f"created bucket {args.bucket}")
