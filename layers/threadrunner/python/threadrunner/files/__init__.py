"""Files: uploads through presigned POST, staged upstream, and the files runs generate, copied to S3."""
