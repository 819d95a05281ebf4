"""The CloudTrail collector: S3 objects found through SQS, a bucket listing, or a local directory."""
