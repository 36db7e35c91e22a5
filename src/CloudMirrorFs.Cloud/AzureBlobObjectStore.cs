using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Azure;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Cloud;

/// <summary>
/// An object store in an Azure Blob container (block blobs), on Azure.Storage.Blobs. Client retries are off: the
/// replicator retries with its own backoff, so a failure surfaces at once as <see cref="MirrorError.Unavailable"/>.
/// </summary>
public sealed class AzureBlobObjectStore : IObjectStore
{
    private readonly AzureStoreOptions _options;
    private readonly BlobContainerClient _container;

    /// <summary>A store for <paramref name="options"/>.</summary>
    public AzureBlobObjectStore(AzureStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        var clientOptions = new BlobClientOptions();
        clientOptions.Retry.MaxRetries = 0;
        clientOptions.Retry.NetworkTimeout = options.Timeout;
        clientOptions.Diagnostics.IsLoggingEnabled = false;
        clientOptions.Diagnostics.IsTelemetryEnabled = false;
        _container = options switch
        {
            { ConnectionString: { } cs } => new BlobServiceClient(cs, clientOptions).GetBlobContainerClient(options.Container),
            { SasUrl: { } sas } => new BlobContainerClient(new Uri(sas), clientOptions),
            { AccountUrl: { } url } => new BlobServiceClient(new Uri(url), new DefaultAzureCredential(), clientOptions).GetBlobContainerClient(options.Container),
            _ => throw new MirrorException(MirrorError.InvalidArgument, $"azure container {options.Container}: give connectionString, sasUrl or accountUrl"),
        };
    }

    /// <inheritdoc />
    public string Description => $"azure://{_options.Container}/{_options.Prefix}";

    /// <inheritdoc />
    public async ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken cancellationToken)
    {
        bool exists = await Call("check container", async () => (await _container.ExistsAsync(cancellationToken).ConfigureAwait(false)).Value).ConfigureAwait(false);
        if (exists)
        {
            return;
        }
        if (!createIfMissing)
        {
            throw new MirrorException(MirrorError.NotFound, $"{Description}: container {_options.Container} does not exist; create it, or set createIfMissing to true");
        }
        await Call("create container", () => _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => await Call($"put {key}", () => _container.GetBlobClient(_options.Prefix + key).UploadAsync(BinaryData.FromBytes(data), overwrite: true, cancellationToken)).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken cancellationToken)
        => await Call($"get {key}", async () =>
        {
            try
            {
                var range = new HttpRange(offset, length);
                Response<BlobDownloadResult> r = await _container.GetBlobClient(_options.Prefix + key)
                    .DownloadContentAsync(new BlobDownloadOptions { Range = range }, cancellationToken).ConfigureAwait(false);
                return r.Value.Content.ToArray();
            }
            catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.BlobNotFound)
            {
                return null;
            }
            catch (RequestFailedException e) when (e.Status == 416)
            {
                return [];
            }
        }).ConfigureAwait(false);

    /// <inheritdoc />
    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        List<ObjectInfo> all = await Call($"list {prefix}", async () =>
        {
            var list = new List<ObjectInfo>();
            await foreach (BlobItem b in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = _options.Prefix + prefix }, cancellationToken).ConfigureAwait(false))
            {
                list.Add(new ObjectInfo(b.Name[_options.Prefix.Length..], b.Properties.ContentLength ?? 0, b.Properties.LastModified?.UtcDateTime ?? DateTime.UnixEpoch));
            }
            return list;
        }).ConfigureAwait(false);
        foreach (ObjectInfo o in all.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            yield return o;
        }
    }

    /// <inheritdoc />
    public async ValueTask DeleteAsync(string key, CancellationToken cancellationToken)
        => await Call($"delete {key}", () => _container.GetBlobClient(_options.Prefix + key).DeleteIfExistsAsync(cancellationToken: cancellationToken)).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (k, ct) => await DeleteAsync(k, ct).ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The one place Azure failures become the engine's errors. Messages name the store, never a secret.</summary>
    private async Task<T> Call<T>(string what, Func<Task<T>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 403 || e.ErrorCode is "AuthenticationFailed" or "AuthorizationFailure")
        {
            throw new MirrorException(MirrorError.AccessDenied, $"{Description}: {what}: access denied ({e.ErrorCode}); check the connection string, SAS or identity", e);
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            throw new MirrorException(MirrorError.NotFound, $"{Description}: {what}: container {_options.Container} does not exist", e);
        }
        catch (RequestFailedException e) when (e.Status is 408 or 429 or >= 500)
        {
            throw new MirrorException(MirrorError.Unavailable, $"{Description}: {what}: the service is busy or failing ({e.Status} {e.ErrorCode}); retrying", new ServiceBusyException(e));
        }
        catch (RequestFailedException e) when (e.Status == 0)
        {
            throw new MirrorException(MirrorError.Unavailable, $"{Description}: {what}: no answer from the endpoint ({e.ErrorCode}); retrying", e);
        }
        catch (RequestFailedException e)
        {
            throw new MirrorException(MirrorError.IoError, $"{Description}: {what}: {e.Status} {e.ErrorCode}", e);
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or TimeoutException or AuthenticationFailedException or IOException
                                   || (e is TaskCanceledException && e.InnerException is TimeoutException))
        {
            throw new MirrorException(MirrorError.Unavailable, $"{Description}: {what}: cannot reach the service ({e.GetType().Name}); retrying", e);
        }
    }

    private async Task Call(string what, Func<Task> action) => await Call(what, async () =>
    {
        await action().ConfigureAwait(false);
        return 0;
    }).ConfigureAwait(false);
}
