namespace CloudMirrorFs.Cloud;

/// <summary>Where an S3 (or S3-compatible) store is and how to reach it. Credentials are resolved values, never references.</summary>
public sealed record S3StoreOptions
{
    /// <summary>The bucket.</summary>
    public required string Bucket { get; init; }

    /// <summary>A key prefix inside the bucket ("" or ending in '/').</summary>
    public string Prefix { get; init; } = "";

    /// <summary>The region (default us-east-1 with a custom endpoint).</summary>
    public string? Region { get; init; }

    /// <summary>A custom endpoint (MinIO, s3rver, another S3-compatible service).</summary>
    public string? Endpoint { get; init; }

    /// <summary>Path-style addressing (needed by most S3-compatible servers).</summary>
    public bool ForcePathStyle { get; init; }

    /// <summary>Access key id; null uses the SDK's standard credential chain.</summary>
    public string? AccessKeyId { get; init; }

    /// <summary>Secret access key.</summary>
    public string? SecretAccessKey { get; init; }

    /// <summary>Session token for temporary credentials.</summary>
    public string? SessionToken { get; init; }

    /// <summary>Per-request timeout.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);
}
