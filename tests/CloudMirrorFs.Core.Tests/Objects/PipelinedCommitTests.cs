using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>
/// Commits whose landing overlaps the next batch: changes are taken at once, commit objects land in order, and a
/// commit that fails takes every later one with it, so the image stays a prefix of the history.
/// </summary>
[TestClass]
public sealed class PipelinedCommitTests
{
    private const int Block = 64 * 1024;
    private TempDir _dir = null!;

    private string Bucket => Path.Combine(_dir.Path, "bucket");

    [TestInitialize]
    public void SetUp() => _dir = new TempDir("pipelined");

    [TestCleanup]
    public void TearDown() => _dir.Dispose();

    [TestMethod]
    public async Task BeginCommit_ReturnsBeforeLanding_NextChangesApplyMeanwhile_AndLandInOrder()
    {
        var link = new LinkModel(1) { RoundTrip = TimeSpan.FromMilliseconds(150) };
        await using var facet = new ObjectStoreFacet("obj", "folder", new SimulatedLinkStore(new FolderObjectStore(Bucket), link), Block, "test");
        await facet.OpenAsync(default);
        var f = new FileRef(1, "f");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await facet.WriteAsync(f, 0, Bytes(Block, 1), default);

        Task first = await facet.BeginCommitAsync(1, default);
        Assert.IsFalse(first.IsCompleted, "the commit is still landing (uploads and commit object cross a 150 ms link)");
        await facet.WriteAsync(f, Block, Bytes(Block, 2), default); // applied while the first commit lands
        byte[] read = new byte[2 * Block];
        Assert.AreEqual(2 * Block, await facet.ReadAsync(f, 0, read, default));
        CollectionAssert.AreEqual(Bytes(Block, 1), read[..Block], "a block whose upload is under way reads from memory");
        Task second = await facet.BeginCommitAsync(2, default);

        await second;
        Assert.IsTrue(first.IsCompletedSuccessfully, "commits land in the order begun");
        Assert.AreEqual((2L, 2L), (facet.CommittedImage, facet.CommittedQueueSeq));
        RemoteImage image = await RemoteImage.LoadAsync(new FolderObjectStore(Bucket), null, default);
        Assert.AreEqual(2, image.Manifest.Commit);
        Assert.AreEqual(2L * Block, image.Manifest.Nodes["f"].Length);
    }

    [TestMethod]
    public async Task FailedLanding_FailsTheLaterCommits_RefusesChangesUntilProbed_ThenGoesBackToTheLandedImage()
    {
        var store = new FailingStore(new FolderObjectStore(Bucket));
        await using var facet = new ObjectStoreFacet("obj", "folder", store, Block, "test");
        await facet.OpenAsync(default);
        var f = new FileRef(1, "f");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await facet.WriteAsync(f, 0, Bytes(Block, 1), default);
        await facet.CommitAsync(1, default); // commit 1 lands

        store.FailKey = RemoteImage.CommitKey(2);
        store.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await facet.WriteAsync(f, 0, Bytes(Block, 2), default);
        Task second = await facet.BeginCommitAsync(2, default);
        await facet.WriteAsync(f, Block, Bytes(Block, 3), default); // commit 2 is still landing: its failure is held
        Task third = await facet.BeginCommitAsync(3, default);
        store.Hold.SetResult();
        await Assert.ThrowsExactlyAsync<MirrorException>(() => second);
        await Assert.ThrowsExactlyAsync<MirrorException>(() => third);
        Assert.IsFalse(File.Exists(Path.Combine(Bucket, RemoteImage.CommitKey(3))), "commit 3 never chains onto a commit 2 that did not land");
        Assert.AreEqual(1, (await RemoteImage.LoadAsync(new FolderObjectStore(Bucket), null, default)).Manifest.Commit);

        var refused = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await facet.WriteAsync(f, 0, Bytes(10, 4), default));
        Assert.AreEqual(MirrorError.Unavailable, refused.Error, "changes are refused until the facet is probed: the caller's batch must start again");
        StringAssert.Contains(refused.Message, "did not land");

        store.FailKey = null;
        await facet.OpenAsync(default); // the probe: back to commit 1
        Assert.AreEqual(1, facet.CommittedImage);
        byte[] read = new byte[2 * Block];
        Assert.AreEqual(Block, await facet.ReadAsync(f, 0, read, default), "the length is commit 1's again");
        CollectionAssert.AreEqual(Bytes(Block, 1), read[..Block], "the bytes are commit 1's again");

        // The caller applies again what did not land, and it lands.
        await facet.WriteAsync(f, 0, Bytes(Block, 2), default);
        await facet.WriteAsync(f, Block, Bytes(Block, 3), default);
        await facet.CommitAsync(3, default);
        string target = Path.Combine(_dir.Path, "restored");
        await RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default);
        CollectionAssert.AreEqual(Bytes(Block, 2).Concat(Bytes(Block, 3)).ToArray(), File.ReadAllBytes(Path.Combine(target, "f")));
    }

    [TestMethod]
    public async Task AbandonUncommitted_AfterAPartBatch_NothingOfItIsCommitted_UntilAppliedAgainAfterTheProbe()
    {
        await using var facet = new ObjectStoreFacet("obj", "folder", new FolderObjectStore(Bucket), Block, "test");
        await facet.OpenAsync(default);
        var f = new FileRef(1, "f");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await facet.WriteAsync(f, 0, Bytes(Block, 1), default);
        await facet.CommitAsync(1, default);

        await facet.WriteAsync(f, 0, Bytes(100, 2), default); // part of a batch that then fails
        facet.AbandonUncommitted();
        var refused = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await facet.CommitAsync(2, default));
        Assert.AreEqual(MirrorError.Unavailable, refused.Error);
        await facet.OpenAsync(default);
        await facet.CommitAsync(2, default); // a shorter batch replayed: nothing of the given-up part goes with it
        byte[] read = new byte[Block];
        await facet.ReadAsync(f, 0, read, default);
        CollectionAssert.AreEqual(Bytes(Block, 1), read);
        RemoteImage image = await RemoteImage.LoadAsync(new FolderObjectStore(Bucket), null, default);
        Assert.AreEqual(1, image.Manifest.Commit, "an empty commit puts nothing");
    }

    private static byte[] Bytes(int n, int seed)
    {
        byte[] b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Refuses puts of one key (an upload the service rejects), until cleared.</summary>
    private sealed class FailingStore(IObjectStore inner) : IObjectStore
    {
        public string? FailKey { get; set; }

        /// <summary>When set, the refused put fails only once this completes (so the test decides when the landing fails).</summary>
        public TaskCompletionSource? Hold { get; set; }

        public string Description => inner.Description;

        public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken ct) => inner.EnsureReadyAsync(createIfMissing, ct);

        public async ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            if (key != FailKey)
            {
                await inner.PutAsync(key, data, ct);
                return;
            }
            if (Hold is { } hold)
            {
                await hold.Task.WaitAsync(ct);
            }
            throw new MirrorException(MirrorError.IoError, $"put {key}: refused (injected)");
        }

        public ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken ct) => inner.GetAsync(key, offset, length, ct);

        public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public ValueTask DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

        public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken ct) => inner.DeleteManyAsync(keys, ct);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
