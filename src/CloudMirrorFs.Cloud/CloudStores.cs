using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;

namespace CloudMirrorFs.Cloud;

/// <summary>Builds the cloud stores from facet settings; the host registers <see cref="Create"/> with the facet factory.</summary>
public static class CloudStores
{
    /// <summary>
    /// A store for an <c>s3</c> or <c>azure</c> facet, or null for other kinds. <paramref name="resolveSecret"/>
    /// turns a reference (<c>env:NAME</c>, <c>file:PATH</c>) into its value for a setting key.
    /// </summary>
    public static IObjectStore? Create(FacetOptions options, Func<string, string, string> resolveSecret)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(resolveSecret);
        string? Setting(string key) => options.Settings.GetValueOrDefault(key);
        string? Secret(string key) => Setting(key) is { } v ? resolveSecret(v, $"facet '{options.Name}'.{key}") : null;
        string prefix = Setting("prefix") is { Length: > 0 } p ? (p.EndsWith('/') ? p : p + "/") : "";
        return options.Kind switch
        {
            "s3" => new S3ObjectStore(new S3StoreOptions
            {
                Bucket = Setting("bucket")!,
                Prefix = prefix,
                Region = Setting("region"),
                Endpoint = Setting("endpoint"),
                ForcePathStyle = Setting("forcePathStyle") == "true",
                AccessKeyId = Secret("accessKeyId"),
                SecretAccessKey = Secret("secretAccessKey"),
                SessionToken = Secret("sessionToken"),
            }),
            "azure" => new AzureBlobObjectStore(new AzureStoreOptions
            {
                Container = Setting("container")!,
                Prefix = prefix,
                ConnectionString = Secret("connectionString"),
                SasUrl = Secret("sasUrl"),
                AccountUrl = Setting("accountUrl"),
            }),
            _ => null,
        };
    }
}
