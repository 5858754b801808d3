package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/samsa-io/samsa/internal/testminio"
)

// minioClient returns a minio-go client built the way tiering.NewS3Store builds the agent's:
// minio.DefaultTransport, static V4 keys, the region given, automatic bucket lookup (path
// style for a custom endpoint).
func minioClient(s *testminio.Server, region string) (*minio.Client, error) {
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		return nil, err
	}
	return minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       false,
		Transport:    tr,
		Region:       region,
		BucketLookup: minio.BucketLookupAuto,
	})
}

// createBucket creates the bucket the agent and the ceiling loops use.
func createBucket(ctx context.Context, s *testminio.Server, bucket, region string) error {
	c, err := minioClient(s, region)
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}
