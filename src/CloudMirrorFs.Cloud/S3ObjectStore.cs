using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Cloud;

/// <summary>
/// An object store in an S3 bucket (AWS or any S3-compatible server), on AWSSDK.S3. Objects over 64 MiB go up in
/// 16 MiB multipart parts. The SDK's own retries are off: the replicator retries with its own backoff, so a failure
/// surfaces at once as <see cref="MirrorError.Unavailable"/> and never blocks a writer.
/// </summary>
public sealed class S3ObjectStore : IObjectStore
{
    private const long MultipartThreshold = 64L << 20;
    private const int PartSize = 16 << 20;
    private readonly S3StoreOptions _options;
    private readonly AmazonS3Client _client;

    /// <summary>A store for <paramref name="options"/>.</summary>
    public S3ObjectStore(S3StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 0,
            Timeout = options.Timeout,
        };
        if (options.Endpoint is not null)
        {
            config.ServiceURL = options.Endpoint;
            config.AuthenticationRegion = options.Region ?? "us-east-1";
        }
        else if (options.Region is not null)
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(options.Region);
        }
        _client = options.AccessKeyId is not null && options.SecretAccessKey is not null
            ? options.SessionToken is null
                ? new AmazonS3Client(new BasicAWSCredentials(options.AccessKeyId, options.SecretAccessKey), config)
                : new AmazonS3Client(new SessionAWSCredentials(options.AccessKeyId, options.SecretAccessKey, options.SessionToken), config)
            : new AmazonS3Client(config);
    }

    /// <inheritdoc />
    public string Description => $"s3://{_options.Bucket}/{_options.Prefix}";

    /// <inheritdoc />
    public async ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken cancellationToken)
    {
        bool exists = await Call("check bucket", async () =>
        {
            try
            {
                await _client.GetBucketLocationAsync(_options.Bucket, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound || e.ErrorCode == "NoSuchBucket")
            {
                return false;
            }
        }).ConfigureAwait(false);
        if (exists)
        {
            return;
        }
        if (!createIfMissing)
        {
            throw new MirrorException(MirrorError.NotFound, $"{Description}: bucket {_options.Bucket} does not exist; create it, or set createIfMissing to true");
        }
        await Call("create bucket", () => _client.PutBucketAsync(new PutBucketRequest { BucketName = _options.Bucket }, cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        string full = _options.Prefix + key;
        if (data.Length > MultipartThreshold)
        {
            await MultipartAsync(full, data, cancellationToken).ConfigureAwait(false);
            return;
        }
        await Call($"put {key}", () => _client.PutObjectAsync(new PutObjectRequest
        {
            BucketName = _options.Bucket,
            Key = full,
            InputStream = new ReadOnlyMemoryStream(data),
            UseChunkEncoding = false,
            AutoCloseStream = true,
        }, cancellationToken)).ConfigureAwait(false);
    }

    private async Task MultipartAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        InitiateMultipartUploadResponse init = await Call($"start multipart {key}", () => _client.InitiateMultipartUploadAsync(
            new InitiateMultipartUploadRequest { BucketName = _options.Bucket, Key = key }, cancellationToken)).ConfigureAwait(false);
        var parts = new List<PartETag>();
        int number = 1;
        for (int offset = 0; offset < data.Length; offset += PartSize, number++)
        {
            ReadOnlyMemory<byte> slice = data.Slice(offset, Math.Min(PartSize, data.Length - offset));
            int n = number;
            UploadPartResponse part = await Call($"upload part {n} of {key}", () => _client.UploadPartAsync(new UploadPartRequest
            {
                BucketName = _options.Bucket,
                Key = key,
                UploadId = init.UploadId,
                PartNumber = n,
                PartSize = slice.Length,
                InputStream = new ReadOnlyMemoryStream(slice),
                UseChunkEncoding = false,
            }, cancellationToken)).ConfigureAwait(false);
            parts.Add(new PartETag(n, part.ETag));
        }
        await Call($"complete multipart {key}", () => _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = _options.Bucket,
            Key = key,
            UploadId = init.UploadId,
            PartETags = parts,
        }, cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken cancellationToken)
    {
        var request = new GetObjectRequest { BucketName = _options.Bucket, Key = _options.Prefix + key };
        if (offset > 0 || length is not null)
        {
            if (length == 0)
            {
                return await ExistsAsync(key, cancellationToken).ConfigureAwait(false) ? [] : null;
            }
            request.ByteRange = length is { } l ? new ByteRange(offset, offset + l - 1) : new ByteRange($"bytes={offset}-");
        }
        return await Call($"get {key}", async () =>
        {
            try
            {
                using GetObjectResponse response = await _client.GetObjectAsync(request, cancellationToken).ConfigureAwait(false);
                using var ms = new MemoryStream();
                await response.ResponseStream.CopyToAsync(ms, cancellationToken).ConfigureAwait(false);
                return ms.ToArray();
            }
            catch (AmazonS3Exception e) when (e.ErrorCode is "NoSuchKey" || (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket"))
            {
                return null;
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                return [];
            }
        }).ConfigureAwait(false);
    }

    private async Task<bool> ExistsAsync(string key, CancellationToken cancellationToken)
        => await Call($"head {key}", async () =>
        {
            try
            {
                await _client.GetObjectMetadataAsync(_options.Bucket, _options.Prefix + key, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                return false;
            }
        }).ConfigureAwait(false);

    /// <inheritdoc />
    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? token = null;
        var all = new List<ObjectInfo>();
        do
        {
            string? t = token;
            ListObjectsV2Response page = await Call($"list {prefix}", () => _client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = _options.Bucket,
                Prefix = _options.Prefix + prefix,
                ContinuationToken = t,
            }, cancellationToken)).ConfigureAwait(false);
            foreach (S3Object o in page.S3Objects ?? [])
            {
                all.Add(new ObjectInfo(o.Key[_options.Prefix.Length..], o.Size ?? 0, o.LastModified?.ToUniversalTime() ?? DateTime.UnixEpoch));
            }
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (token is not null);
        foreach (ObjectInfo o in all.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            yield return o;
        }
    }

    /// <inheritdoc />
    public async ValueTask DeleteAsync(string key, CancellationToken cancellationToken)
        => await Call($"delete {key}", () => _client.DeleteObjectAsync(_options.Bucket, _options.Prefix + key, cancellationToken)).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (string[] chunk in keys.Chunk(1000))
        {
            await Call("delete objects", () => _client.DeleteObjectsAsync(new DeleteObjectsRequest
            {
                BucketName = _options.Bucket,
                Objects = [.. chunk.Select(k => new KeyVersion { Key = _options.Prefix + k })],
            }, cancellationToken)).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The one place S3 failures become the engine's errors. Messages name the store, never a secret.</summary>
    private async Task<T> Call<T>(string what, Func<Task<T>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode is HttpStatusCode.Forbidden || e.ErrorCode is "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "AccessDenied")
        {
            throw new MirrorException(MirrorError.AccessDenied, $"{Description}: {what}: access denied ({e.ErrorCode}); check accessKeyId and secretAccessKey", e);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket")
        {
            throw new MirrorException(MirrorError.NotFound, $"{Description}: {what}: bucket {_options.Bucket} does not exist", e);
        }
        catch (AmazonS3Exception e) when ((int)e.StatusCode is 429 or >= 500 || e.ErrorCode is "SlowDown" or "RequestTimeout" or "ServiceUnavailable")
        {
            throw new MirrorException(MirrorError.Unavailable, $"{Description}: {what}: the service is busy or failing ({(int)e.StatusCode} {e.ErrorCode}); retrying", new ServiceBusyException(e));
        }
        catch (AmazonS3Exception e)
        {
            throw new MirrorException(MirrorError.IoError, $"{Description}: {what}: {(int)e.StatusCode} {e.ErrorCode}", e);
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or TimeoutException or AmazonServiceException or IOException
                                   || (e is TaskCanceledException && e.InnerException is TimeoutException))
        {
            throw new MirrorException(MirrorError.Unavailable, $"{Description}: {what}: cannot reach the endpoint ({e.GetType().Name}); retrying", e);
        }
    }

    private async Task Call(string what, Func<Task> action) => await Call(what, async () =>
    {
        await action().ConfigureAwait(false);
        return 0;
    }).ConfigureAwait(false);

    /// <summary>A read-only stream over memory, so a put does not copy the bytes.</summary>
    private sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> data) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => data.Length;

        public override long Position
        {
            get => _position;
            set => _position = (int)value;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, data.Length - _position);
            data.Span.Slice(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => _position = (int)(origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => data.Length + offset,
        });

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
