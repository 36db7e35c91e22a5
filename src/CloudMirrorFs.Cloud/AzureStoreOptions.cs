namespace CloudMirrorFs.Cloud;

/// <summary>Where an Azure Blob container is and how to reach it: one of a connection string, a SAS URL, or an account URL (DefaultAzureCredential).</summary>
public sealed record AzureStoreOptions
{
    /// <summary>The container.</summary>
    public required string Container { get; init; }

    /// <summary>A blob name prefix ("" or ending in '/').</summary>
    public string Prefix { get; init; } = "";

    /// <summary>A storage connection string (resolved value).</summary>
    public string? ConnectionString { get; init; }

    /// <summary>A container SAS URL (resolved value).</summary>
    public string? SasUrl { get; init; }

    /// <summary>An account URL used with Azure.Identity's DefaultAzureCredential.</summary>
    public string? AccountUrl { get; init; }

    /// <summary>Per-request timeout.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);
}
