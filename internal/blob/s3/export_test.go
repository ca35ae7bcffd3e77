package s3

import awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

// S3Client gives the tests the store's own client, to look at the bucket
// beneath the blob interface (unfinished uploads, raw keys).
func (s *Store) S3Client() *awss3.Client { return s.client }
