package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinel errors. Functions wrap them with detail; test with errors.Is.
var (
	// ErrNoBucket means the bucket does not exist.
	ErrNoBucket = errors.New("no such bucket")
	// ErrNoCredentials means the AWS credential chain found no credentials.
	ErrNoCredentials = errors.New("no credentials")
	// ErrAccessDenied means the service refused the credentials or the request.
	ErrAccessDenied = errors.New("access denied")
	// ErrNotFound means an object is missing.
	ErrNotFound = errors.New("object not found")
	// ErrUnknownTopic means the archive holds no partition of the topic.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrEmptyRange means a query selects nothing: an empty offset or time range, or one
	// that lies outside everything archived.
	ErrEmptyRange = errors.New("empty range")
	// ErrBadConfig means a Config or QueryOptions value is invalid.
	ErrBadConfig = errors.New("bad configuration")
	// ErrCorrupt means an archived object does not hold what the manifest says; the
	// error is a *CorruptError naming the object and offset.
	ErrCorrupt = errors.New("corrupt archive data")
)

// DefaultRegion is the region used with an Endpoint when no region is configured
// (MinIO and most S3-compatible services accept any region).
const DefaultRegion = "us-east-1"

// Config says where an archive is and how to reach it.
type Config struct {
	// Endpoint is the S3 service URL, e.g. "http://127.0.0.1:9000" for MinIO. Empty: AWS S3,
	// with the endpoint the SDK derives from the region.
	Endpoint string
	// Bucket holds the archive. Required.
	Bucket string
	// Prefix is the key prefix the agents upload under (their tiering.prefix), e.g.
	// "site-a/gw-1". Empty: the top of the bucket.
	Prefix string
	// Region of the bucket. Empty: the standard AWS chain (AWS_REGION, the shared config
	// profile); with an Endpoint, DefaultRegion when the chain has none.
	Region string
	// PathStyle forces path-style requests (http://host/bucket/key). An Endpoint always
	// uses path style (as MinIO wants); AWS S3 uses virtual-hosted style unless this is set.
	PathStyle bool
	// Profile selects a profile of the shared AWS config files. Empty: AWS_PROFILE or "default".
	Profile string
	// AccessKeyID and SecretAccessKey are static credentials; set both or neither. Neither:
	// the standard AWS credential chain (environment, shared files, SSO, web identity,
	// container and EC2 instance roles).
	AccessKeyID     string
	SecretAccessKey string
	// Anonymous sends unsigned requests (a public bucket); no credentials are looked up.
	Anonymous bool
	// HTTPClient, when set, carries every request (for custom TLS roots or proxies).
	HTTPClient *http.Client
}

// validate checks the configuration.
func (c *Config) validate() error {
	switch {
	case c.Bucket == "":
		return fmt.Errorf("%w: bucket is required", ErrBadConfig)
	case (c.AccessKeyID == "") != (c.SecretAccessKey == ""):
		return fmt.Errorf("%w: set both access key id and secret access key, or neither", ErrBadConfig)
	case c.Anonymous && c.AccessKeyID != "":
		return fmt.Errorf("%w: anonymous access with static credentials", ErrBadConfig)
	case c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://"):
		return fmt.Errorf("%w: endpoint %q is not an http:// or https:// URL", ErrBadConfig, c.Endpoint)
	}
	return nil
}

// Counters count the requests a query (or listing) sends and the bytes it reads from
// response bodies. They are safe for concurrent use. A query's counters also count into the
// archive's totals (their parent).
type Counters struct {
	Bytes    atomic.Int64 // response body bytes read
	Requests atomic.Int64 // GET, HEAD and LIST requests sent
	parent   *Counters
}

// addBytes counts k body bytes here and in every parent.
func (c *Counters) addBytes(k int64) {
	for ; c != nil; c = c.parent {
		c.Bytes.Add(k)
	}
}

// addRequest counts a request here and in every parent.
func (c *Counters) addRequest() {
	for ; c != nil; c = c.parent {
		c.Requests.Add(1)
	}
}

// objectClient is the little of S3 this package needs: whole and ranged GETs, and listing
// "directories", each counted in a Counters.
type objectClient struct {
	s3       *s3.Client
	bucket   string
	endpoint string // for messages: "s3://bucket" or the endpoint URL
}

// newObjectClient builds the S3 client from cfg with the standard AWS configuration chain and
// checks that credentials can be had (unless anonymous).
func newObjectClient(ctx context.Context, cfg Config) (*objectClient, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	switch {
	case cfg.Anonymous:
		opts = append(opts, awsconfig.WithCredentialsProvider(aws.AnonymousCredentials{}))
	case cfg.AccessKeyID != "":
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(cfg.HTTPClient))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, fmt.Errorf("%w: no AWS region: pass a region or set AWS_REGION", ErrBadConfig)
		}
		awsCfg.Region = DefaultRegion
	}
	if !cfg.Anonymous {
		creds, err := awsCfg.Credentials.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: the AWS credential chain found none (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE): %s",
				ErrNoCredentials, oneLine(err.Error()))
		}
		if !creds.HasKeys() {
			return nil, fmt.Errorf("%w: the AWS credential chain returned empty keys", ErrNoCredentials)
		}
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		o.UsePathStyle = o.UsePathStyle || cfg.PathStyle
		// Ranged GETs carry no whole-object checksum; batches have their own CRC-32C.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	where := "s3://" + cfg.Bucket
	if cfg.Endpoint != "" {
		where = strings.TrimSuffix(cfg.Endpoint, "/") + "/" + cfg.Bucket
	}
	return &objectClient{s3: client, bucket: cfg.Bucket, endpoint: where}, nil
}

// url names an object in messages.
func (c *objectClient) url(key string) string { return c.endpoint + "/" + key }

// checkBucket sends HeadBucket: a missing bucket or refused credentials come back as
// ErrNoBucket or ErrAccessDenied.
func (c *objectClient) checkBucket(ctx context.Context, n *Counters) error {
	n.addRequest()
	if _, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(c.bucket)}); err != nil {
		return c.classify(err, "", "check bucket")
	}
	return nil
}

// maxSmallObject bounds whole-object reads (manifests, indexes): an index of a segment of
// 2 GiB with one entry per 4 KiB is 4 MiB.
const maxSmallObject = 256 << 20

// get reads a whole object of at most maxSmallObject bytes.
func (c *objectClient) get(ctx context.Context, key string, n *Counters) ([]byte, error) {
	n.addRequest()
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, c.classify(err, key, "get")
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(&countingReader{r: out.Body, n: n}, maxSmallObject+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", c.url(key), err)
	}
	if len(data) > maxSmallObject {
		return nil, fmt.Errorf("get %s: more than %d bytes: %w", c.url(key), maxSmallObject, ErrCorrupt)
	}
	return data, nil
}

// getRange reads length bytes at off of an object into dst (reused when big enough). It
// returns fewer bytes, without error, when the object ends first, and the object's total
// size from the Content-Range header (-1 if unknown).
func (c *objectClient) getRange(ctx context.Context, key string, off, length int64, dst []byte, n *Counters) ([]byte, int64, error) {
	if length <= 0 {
		return dst[:0], -1, nil
	}
	n.addRequest()
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(c.bucket),
		Key:    aws.String(key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1)),
	})
	if err != nil {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
			return dst[:0], -1, nil // the object is shorter than off
		}
		return nil, -1, c.classify(err, key, fmt.Sprintf("get bytes %d-%d of", off, off+length-1))
	}
	defer out.Body.Close()
	total := parseContentRangeTotal(aws.ToString(out.ContentRange))
	if int64(cap(dst)) < length {
		dst = make([]byte, length)
	}
	dst = dst[:length]
	got, err := io.ReadFull(&countingReader{r: out.Body, n: n}, dst)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, total, &bodyError{fmt.Errorf("read bytes %d-%d of %s: %w", off, off+length-1, c.url(key), err)}
	}
	return dst[:got], total, nil
}

// bodyError is a failure while reading a response body (a connection cut mid-transfer), which
// the SDK does not retry but a caller may.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// rangeAttempts bounds the tries of one ranged GET whose body breaks off.
const rangeAttempts = 3

// getRangeRetry is getRange, retrying a body that breaks off (the SDK already retries
// failed requests).
func (c *objectClient) getRangeRetry(ctx context.Context, key string, off, length int64, dst []byte, n *Counters) ([]byte, int64, error) {
	for attempt := 1; ; attempt++ {
		data, total, err := c.getRange(ctx, key, off, length, dst, n)
		var be *bodyError
		if err == nil || !errors.As(err, &be) || attempt == rangeAttempts || ctx.Err() != nil {
			return data, total, err
		}
	}
}

// parseContentRangeTotal returns the total of "bytes a-b/total", or -1.
func parseContentRangeTotal(s string) int64 {
	_, total, ok := strings.Cut(s, "/")
	if !ok {
		return -1
	}
	v, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// listDirs returns the names of the "directories" right under prefix (which ends with "/"
// or is empty), without the prefix and the trailing slash, in key order.
func (c *objectClient) listDirs(ctx context.Context, prefix string, n *Counters) ([]string, error) {
	var names []string
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(c.bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		n.addRequest()
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.classify(err, prefix, "list")
		}
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if name != "" {
				names = append(names, name)
			}
		}
	}
	return names, nil
}

// classify wraps an SDK error with the operation and key, mapping the service's answers to
// the package's sentinels.
func (c *objectClient) classify(err error, key, op string) error {
	what := c.url(key)
	if key == "" {
		what = c.endpoint
	}
	var code string
	var api smithy.APIError
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	status := 0
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchBucket" || (key == "" && status == http.StatusNotFound):
		return fmt.Errorf("%s %s: %w", op, c.endpoint, ErrNoBucket)
	case code == "NoSuchKey" || status == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w", op, what, ErrNotFound)
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
		status == http.StatusForbidden:
		if code == "" {
			code = http.StatusText(status)
		}
		return fmt.Errorf("%s %s: %w (%s)", op, what, ErrAccessDenied, code)
	}
	return fmt.Errorf("%s %s: %w", op, what, err)
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *Counters
}

func (cr *countingReader) Read(p []byte) (int, error) {
	k, err := cr.r.Read(p)
	cr.n.addBytes(int64(k))
	return k, err
}
