using System.Text.Json;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Tests.Objects;

[TestClass]
public sealed class ClaimTests
{
    private static ObjectStoreFacet Facet(string bucket, string stateDir, bool force = false)
        => new("r", "folder", new FolderObjectStore(bucket), 65536, "v", claimFor: stateDir, forceClaim: force);

    [TestMethod]
    public async Task SecondClaimant_IsRefused_NamingTheHolder()
    {
        using var dir = new TempDir("claim");
        string bucket = Path.Combine(dir.Path, "b");
        await using ObjectStoreFacet first = Facet(bucket, "/var/lib/cmfs/first");
        await first.OpenAsync(default);
        await using ObjectStoreFacet second = Facet(bucket, "/var/lib/cmfs/second");
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await second.OpenAsync(default));
        Assert.AreEqual(MirrorError.AccessDenied, e.Error);
        StringAssert.Contains(e.Message, "/var/lib/cmfs/first");
        StringAssert.Contains(e.Message, Environment.MachineName);
        Assert.AreEqual(1, Directory.GetFiles(Path.Combine(bucket, "claims")).Length, "the refused claimant left no claim behind");
    }

    [TestMethod]
    public async Task StaleOwnClaim_AfterAKill_IsTakenOverAtOnce()
    {
        using var dir = new TempDir("claim");
        string bucket = Path.Combine(dir.Path, "b");
        ObjectStoreFacet killed = Facet(bucket, "/var/lib/cmfs/same");
        await killed.OpenAsync(default);
        await killed.AbandonClaimAsync(); // SIGKILL: the claim and a fresh heartbeat stay behind
        await using ObjectStoreFacet restarted = Facet(bucket, "/var/lib/cmfs/same");
        await restarted.OpenAsync(default); // no wait for the heartbeat to go stale
        Assert.AreEqual(1, Directory.GetFiles(Path.Combine(bucket, "claims")).Length);
    }

    [TestMethod]
    public async Task UploadsOfACommitThatNeverLanded_AreDeletedAfterAKill_AndAfterACleanCloseDataIsNotListed()
    {
        // An open looks through every block object for ones numbered past the image (a writer killed between its
        // uploads and its commit object) only when the last writer may have left some: its claim was taken over.
        // After a clean close it does not list them: on a large remote that walk cost seconds or thousands of requests.
        using var dir = new TempDir("claim");
        string bucket = Path.Combine(dir.Path, "b");
        var store = new CountingStore(new FolderObjectStore(bucket));
        var f = new FileRef(7, "f");
        ObjectStoreFacet killed = new("r", "folder", store, 65536, "v", claimFor: "/var/lib/cmfs/same");
        await killed.OpenAsync(default);
        await killed.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await killed.WriteAsync(f, 0, new byte[1000], default);
        await killed.CommitAsync(1, default);
        string stray = $"data/{7:x16}/{0:x16}.{killed.CommittedImage + 1:x16}"; // what the next commit uploaded before the kill
        await store.PutAsync(stray, new byte[10], default);
        await killed.AbandonClaimAsync();

        store.DataListings = 0;
        ObjectStoreFacet restarted = new("r", "folder", store, 65536, "v", claimFor: "/var/lib/cmfs/same");
        await restarted.OpenAsync(default);
        Assert.AreEqual(1, store.DataListings, "after a kill the block objects are looked through");
        Assert.IsNull(await store.GetAsync(stray, 0, null, default), "the upload of the commit that never landed is deleted");
        await restarted.DisposeAsync(); // clean: every commit landed, the claim is given up

        store.DataListings = 0;
        await using ObjectStoreFacet again = new("r", "folder", store, 65536, "v", claimFor: "/var/lib/cmfs/same");
        await again.OpenAsync(default);
        Assert.AreEqual(0, store.DataListings, "after a clean close the block objects are not listed");
        byte[] got = new byte[1000];
        Assert.AreEqual(1000, await again.ReadAsync(f, 0, got, default));
    }

    /// <summary>A store that counts listings of the block objects.</summary>
    private sealed class CountingStore(IObjectStore inner) : IObjectStore
    {
        public int DataListings;

        public string Description => inner.Description;

        public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken cancellationToken) => inner.EnsureReadyAsync(createIfMissing, cancellationToken);

        public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => inner.PutAsync(key, data, cancellationToken);

        public ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken cancellationToken) => inner.GetAsync(key, offset, length, cancellationToken);

        public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken cancellationToken)
        {
            if (prefix.StartsWith("data", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref DataListings);
            }
            return inner.ListAsync(prefix, cancellationToken);
        }

        public ValueTask DeleteAsync(string key, CancellationToken cancellationToken) => inner.DeleteAsync(key, cancellationToken);

        public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken) => inner.DeleteManyAsync(keys, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [TestMethod]
    public async Task LiveClaimFromElsewhere_Forced_IsTakenOver()
    {
        using var dir = new TempDir("claim");
        string bucket = Path.Combine(dir.Path, "b");
        await using ObjectStoreFacet first = Facet(bucket, "/var/lib/cmfs/first");
        await first.OpenAsync(default);
        await using ObjectStoreFacet forced = Facet(bucket, "/var/lib/cmfs/other", force: true);
        await forced.OpenAsync(default);
        Assert.AreEqual(1, Directory.GetFiles(Path.Combine(bucket, "claims")).Length);
    }

    [TestMethod]
    public async Task StaleClaimFromElsewhere_IsTakenOver_AndAReleasedClaimFreesTheRemote()
    {
        using var dir = new TempDir("claim");
        string bucket = Path.Combine(dir.Path, "b");
        var store = new FolderObjectStore(bucket);
        var old = new RemoteClaim.ClaimRecord("deadbeefdeadbeef", "gone-host", "/var/lib/cmfs/gone", 1, DateTime.UtcNow.AddHours(-1));
        await store.PutAsync($"claims/{old.StartedUtc.Ticks:D20}-{old.Id}.json", JsonSerializer.SerializeToUtf8Bytes(old), default);
        await store.PutAsync($"heartbeats/{old.Id}.json", JsonSerializer.SerializeToUtf8Bytes(DateTime.UtcNow.AddMinutes(-5)), default);
        await using (ObjectStoreFacet taker = Facet(bucket, "/var/lib/cmfs/new"))
        {
            await taker.OpenAsync(default);
        }
        Assert.AreEqual(0, Directory.GetFiles(Path.Combine(bucket, "claims")).Length, "a clean close gives the claim up");
        await using ObjectStoreFacet next = Facet(bucket, "/var/lib/cmfs/elsewhere");
        await next.OpenAsync(default);
    }
    [TestMethod]
    public async Task DamagedClaimAndHeartbeat_LeftByAKilledPut_DoNotLockTheRemoteForever()
    {
        using var dir = new TempDir("claim");
        string bucket = Path.Combine(dir.Path, "b");
        var coded = new CodecObjectStore(new FolderObjectStore(bucket), null, compress: true);
        // A claim whose put was cut off, and a live-looking claim whose heartbeat put was cut off.
        await new FolderObjectStore(bucket).PutAsync($"claims/{DateTime.UtcNow.AddMinutes(-2).Ticks:D20}-0123456789abcdef.json", "{\"Id\":"u8.ToArray(), default);
        var other = new RemoteClaim.ClaimRecord("deadbeefdeadbeef", "other-host", "/var/lib/cmfs/other", 1, DateTime.UtcNow.AddMinutes(-1));
        await coded.PutAsync($"claims/{other.StartedUtc.Ticks:D20}-{other.Id}.json", JsonSerializer.SerializeToUtf8Bytes(other), default);
        await new FolderObjectStore(bucket).PutAsync($"heartbeats/{other.Id}.json", Array.Empty<byte>(), default);

        await using var facet = new ObjectStoreFacet("r", "folder", new CodecObjectStore(new FolderObjectStore(bucket), null, compress: true), 65536, "v",
            claimFor: "/var/lib/cmfs/new");
        await facet.OpenAsync(default);
        string[] claims = Directory.GetFiles(Path.Combine(bucket, "claims"));
        Assert.AreEqual(1, claims.Length, "both damaged leftovers were cleared: " + string.Join(", ", claims.Select(Path.GetFileName)));
        Assert.IsFalse(File.Exists(Path.Combine(bucket, "heartbeats", other.Id + ".json")));
    }
}
