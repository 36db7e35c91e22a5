using System.Diagnostics;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Tests.Objects;

namespace CloudMirrorFs.Cloud.Tests;

[TestClass]
public sealed class S3ObjectStoreTests : ObjectStoreContractTests
{
    internal static S3ObjectStore Create(string? prefix = null, string secret = "S3RVER", int? port = null, string bucket = TestServers.S3Bucket)
        => new(new S3StoreOptions
        {
            Bucket = bucket,
            Prefix = prefix ?? $"t{Guid.NewGuid():N}/",
            Endpoint = $"http://127.0.0.1:{port ?? TestServers.S3Port}",
            ForcePathStyle = true,
            AccessKeyId = "S3RVER",
            SecretAccessKey = secret,
            Timeout = TimeSpan.FromSeconds(10),
        });

    protected override Task<IObjectStore> CreateStoreAsync() => Task.FromResult<IObjectStore>(Create());

    [TestMethod]
    public async Task Put_SeventyMiB_GoesMultipart_ReadsBackEqual()
    {
        byte[] big = Bytes(70 << 20, 9);
        await Store.PutAsync("big.bin", big, default);
        byte[]? got = await Store.GetAsync("big.bin", 0, null, default);
        Assert.IsNotNull(got);
        Assert.AreEqual(big.Length, got.Length);
        Assert.IsTrue(big.AsSpan().SequenceEqual(got));
    }

    [TestMethod]
    public async Task UnreachableEndpoint_IsUnavailable_Quickly()
    {
        await using S3ObjectStore store = Create(port: TestServers.FreePort());
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.PutAsync("k", new byte[1], default));
        Assert.AreEqual(MirrorError.Unavailable, e.Error, e.Message);
        Assert.IsTrue(sw.Elapsed < TimeSpan.FromSeconds(15));
    }

    [TestMethod]
    public async Task MissingBucket_WithoutCreate_NamesTheBucket()
    {
        await using S3ObjectStore store = Create(bucket: "no-such-bucket-" + Guid.NewGuid().ToString("N")[..8]);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.EnsureReadyAsync(false, default));
        Assert.AreEqual(MirrorError.NotFound, e.Error);
        StringAssert.Contains(e.Message, "no-such-bucket-");
    }

    [TestMethod]
    public async Task MissingBucket_WithCreate_IsCreated()
    {
        string bucket = "made-" + Guid.NewGuid().ToString("N")[..8];
        await using S3ObjectStore store = Create(bucket: bucket);
        await store.EnsureReadyAsync(true, default);
        await store.PutAsync("x", new byte[] { 1 }, default);
        CollectionAssert.AreEqual(new byte[] { 1 }, await store.GetAsync("x", 0, null, default));
    }

    // Wrong credentials: s3rver accepts any signature, so the credential test runs against Azurite (below).
}

[TestClass]
public sealed class AzureBlobObjectStoreTests : ObjectStoreContractTests
{
    internal static AzureBlobObjectStore Create(string? container = null, string key = TestServers.AzuriteKey, int? port = null)
        => new(new AzureStoreOptions
        {
            Container = container ?? $"c{Guid.NewGuid():N}",
            ConnectionString = port is null ? TestServers.AzureConnectionString(key)
                : $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
            Timeout = TimeSpan.FromSeconds(10),
        });

    protected override Task<IObjectStore> CreateStoreAsync() => Task.FromResult<IObjectStore>(Create());

    [TestMethod]
    public async Task WrongAccountKey_IsAccessDenied_WithoutTheKey()
    {
        string wrong = Convert.ToBase64String(new byte[64]);
        await using AzureBlobObjectStore store = Create(key: wrong);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.EnsureReadyAsync(true, default));
        Assert.AreEqual(MirrorError.AccessDenied, e.Error, e.Message);
        Assert.IsFalse(e.Message.Contains(wrong, StringComparison.Ordinal));
    }

    [TestMethod]
    public async Task MissingContainer_WithoutCreate_NamesIt()
    {
        await using AzureBlobObjectStore store = Create(container: "absent-container");
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.EnsureReadyAsync(false, default));
        Assert.AreEqual(MirrorError.NotFound, e.Error);
        StringAssert.Contains(e.Message, "absent-container");
    }

    [TestMethod]
    public async Task UnreachableEndpoint_IsUnavailable()
    {
        await using AzureBlobObjectStore store = Create(port: TestServers.FreePort());
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.EnsureReadyAsync(true, default));
        Assert.AreEqual(MirrorError.Unavailable, e.Error, e.Message);
    }
}
