using System.Text.Json;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>
/// Partial-block writes go up as extents laid over the committed block (format 3): no read of the block, only the
/// written bytes on the wire; reads, reopen, restore and verify see base and extents as one block.
/// </summary>
[TestClass]
public sealed class ExtentTests
{
    private const int Block = 64 * 1024;
    private TempDir _dir = null!;

    private string Bucket => Path.Combine(_dir.Path, "bucket");

    [TestInitialize]
    public void SetUp() => _dir = new TempDir("extents");

    [TestCleanup]
    public void TearDown() => _dir.Dispose();

    [TestMethod]
    public async Task PartialWrites_UploadOnlyTheWrittenBytes_AndReadNothingBack()
    {
        // A remote an older cmfs created: whole blocks keep it at format 1, the first extent raises it.
        Directory.CreateDirectory(Bucket);
        File.WriteAllBytes(Path.Combine(Bucket, "volume.json"),
            JsonSerializer.SerializeToUtf8Bytes(new VolumeDescriptor(VolumeDescriptor.BaseFormat, Block, "test", DateTime.UtcNow, null)));
        var store = new CountingStore(new FolderObjectStore(Bucket));
        var (facet, f) = await NewFileAsync(store, new FileRef(1, "f"));
        await using ObjectStoreFacet _ = facet;
        byte[] model = Bytes(16 * Block, 1);
        await facet.WriteAsync(f, 0, model, default);
        await facet.CommitAsync(1, default);
        Assert.AreEqual(1, Format(), "whole blocks need no new format");

        long getsBefore = store.DataGets;
        long bytesBefore = facet.BytesUploaded;
        long objectsBefore = facet.ObjectsUploaded;
        var rng = new Random(2);
        var touched = new HashSet<long>();
        long written = 0;
        for (int i = 0; i < 16; i++)
        {
            // One 4 KiB write into each block, at a random place that never covers the block whole.
            long offset = i * (long)Block + rng.Next(0, Block - 4096);
            byte[] data = Bytes(4096, 100 + i);
            await facet.WriteAsync(f, offset, data, default);
            data.CopyTo(model, offset);
            touched.Add(offset / Block);
            written += data.Length;
        }
        await facet.CommitAsync(2, default);

        Assert.AreEqual(getsBefore, store.DataGets, "no block was read back to be changed");
        long commitBytes = facet.BytesUploaded - bytesBefore - written;
        Assert.IsTrue(commitBytes is > 0 and < 8192, $"uploaded {facet.BytesUploaded - bytesBefore} bytes for {written} written: only the written bytes and the commit object");
        Assert.AreEqual(touched.Count + 1, facet.ObjectsUploaded - objectsBefore, "one extent object per changed block, and the commit");
        Assert.AreEqual(VolumeDescriptor.ExtentFormat, Format(), "the first commit holding an extent raised the format, so an older reader refuses the remote");

        await AssertImageAsync(f, model);
    }

    [TestMethod]
    public async Task RandomWritesTruncatesAndCommits_ReadReopenAndRestore_MatchAModel()
    {
        var (facet, f) = await NewFileAsync(new FolderObjectStore(Bucket), new FileRef(2, "m"));
        await using ObjectStoreFacet _ = facet;
        byte[] model = [];
        var rng = new Random(7);
        long seq = 0;
        for (int step = 0; step < 600; step++)
        {
            int roll = rng.Next(100);
            if (roll < 70)
            {
                int length = rng.Next(1, 3 * Block / 2);
                long offset = rng.Next(0, Math.Max(1, model.Length + Block / 2));
                if (rng.Next(4) == 0)
                {
                    offset -= offset % 4096; // some aligned, some not
                }
                byte[] data = Bytes(length, step);
                await facet.WriteAsync(f, offset, data, default);
                if (offset + length > model.Length)
                {
                    Array.Resize(ref model, (int)(offset + length));
                }
                data.CopyTo(model, offset);
            }
            else if (roll < 82)
            {
                long length = rng.Next(0, model.Length + Block);
                await facet.SetLengthAsync(f, length, default);
                Array.Resize(ref model, (int)length); // growing reads as zeros, shrinking forgets
            }
            else
            {
                await facet.CommitAsync(++seq, default);
            }
            if (step % 37 == 0)
            {
                CollectionAssert.AreEqual(model, await ReadAllAsync(facet, f, model.Length), $"step {step}: the facet's own reads (committed and in memory)");
            }
            if (step % 150 == 149)
            {
                await facet.CommitAsync(++seq, default);
                await AssertImageAsync(f, model);
            }
        }
        await facet.CommitAsync(++seq, default);
        await AssertImageAsync(f, model);
    }

    [TestMethod]
    public async Task ManySmallCommitsToOneBlock_AreCompacted_AndSupersededExtentsCollected()
    {
        var store = new CountingStore(new FolderObjectStore(Bucket));
        var (facet, f) = await NewFileAsync(store, new FileRef(3, "c"));
        await using ObjectStoreFacet _ = facet;
        byte[] model = Bytes(2 * Block, 3);
        await facet.WriteAsync(f, 0, model, default);
        await facet.CommitAsync(1, default);
        int maxObjects = 0;
        for (int i = 0; i < 130; i++)
        {
            // Disjoint small writes, so no newer extent ever hides an older one: only compaction bounds the list.
            int offset = (i * 509) % (Block - 100);
            byte[] data = Bytes(100, 1000 + i);
            await facet.WriteAsync(f, offset, data, default);
            data.CopyTo(model, offset);
            await facet.CommitAsync(i + 2, default);
            RemoteImage image = await RemoteImage.LoadAsync(new FolderObjectStore(Bucket), null, default);
            maxObjects = Math.Max(maxObjects, image.Manifest.Nodes["c"].SourceOf(0)!.ExtentObjects);
        }
        Assert.IsTrue(maxObjects <= 8, $"a block carried {maxObjects} extent objects; compaction keeps it at 8 or fewer");
        Assert.IsTrue(store.DataGets > 0, "compaction read the block back");
        // Retention zero: at each checkpoint (every 64 commits) superseded bases and extents are deleted.
        int dataObjects = Directory.GetFiles(Path.Combine(Bucket, "data"), "*", SearchOption.AllDirectories).Length;
        Assert.IsTrue(dataObjects < 80, $"{dataObjects} data objects left after 130 commits: superseded extents were collected");
        await AssertImageAsync(f, model);
    }

    [TestMethod]
    public async Task Truncate_InsideABlockCarryingExtents_ThenGrow_ReadsZerosAfterReopen()
    {
        var (facet, f) = await NewFileAsync(new FolderObjectStore(Bucket), new FileRef(4, "t"));
        await using ObjectStoreFacet _ = facet;
        byte[] model = Bytes(3 * Block, 4);
        await facet.WriteAsync(f, 0, model, default);
        await facet.CommitAsync(1, default);
        await facet.WriteAsync(f, Block + 1000, Bytes(5000, 5), default);
        await facet.CommitAsync(2, default);
        await facet.SetLengthAsync(f, Block + 3000, default); // inside the extent, and inside the base
        await facet.CommitAsync(3, default);
        await facet.SetLengthAsync(f, 3 * Block, default);
        await facet.WriteAsync(f, 2 * Block + 10, Bytes(10, 6), default);
        await facet.CommitAsync(4, default);

        Bytes(5000, 5).AsSpan(0, 2000).CopyTo(model.AsSpan(Block + 1000));
        Array.Clear(model, Block + 3000, 2 * Block - 3000);
        Bytes(10, 6).CopyTo(model, 2 * Block + 10);
        await AssertImageAsync(f, model);
    }

    /// <summary>An open facet over <paramref name="store"/> holding one empty file.</summary>
    private static async Task<(ObjectStoreFacet Facet, FileRef File)> NewFileAsync(IObjectStore store, FileRef file)
    {
        var facet = new ObjectStoreFacet("obj", "folder", store, Block, "test");
        await facet.OpenAsync(default);
        await facet.CreateFileAsync(file, (UnixFileMode)0b110_100_100, default);
        return (facet, file);
    }

    /// <summary>The image as a new machine sees it: a reopened facet's reads, and <c>cmfs restore</c>'s file.</summary>
    private async Task AssertImageAsync(FileRef f, byte[] model)
    {
        await using (var again = new ObjectStoreFacet("obj", "folder", new FolderObjectStore(Bucket), Block, "test"))
        {
            await again.OpenAsync(default);
            CollectionAssert.AreEqual(model, await ReadAllAsync(again, f, model.Length), "a reopened facet reads the model");
        }
        string target = Path.Combine(_dir.Path, "restored-" + Guid.NewGuid().ToString("N")[..6]);
        await RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default);
        CollectionAssert.AreEqual(model, File.ReadAllBytes(Path.Combine(target, f.Path)), "the restored file is the model");
    }

    private static async Task<byte[]> ReadAllAsync(ObjectStoreFacet facet, FileRef f, int length)
    {
        NodeInfo info = (await facet.StatAsync(f.Path, default))!.Value;
        Assert.AreEqual(length, info.Length, "length");
        byte[] got = new byte[length];
        int n = await facet.ReadAsync(f, 0, got, default);
        Assert.AreEqual(length, n);
        return got;
    }

    private int Format()
        => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Bucket, "volume.json"))).RootElement.GetProperty("Format").GetInt32();

    private static byte[] Bytes(int n, int seed)
    {
        byte[] b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Counts reads of block objects (keys under <c>data/</c>).</summary>
    private sealed class CountingStore(IObjectStore inner) : IObjectStore
    {
        private long _dataGets;

        public long DataGets => Interlocked.Read(ref _dataGets);

        public string Description => inner.Description;

        public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken ct) => inner.EnsureReadyAsync(createIfMissing, ct);

        public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct) => inner.PutAsync(key, data, ct);

        public ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken ct)
        {
            if (key.StartsWith("data/", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _dataGets);
            }
            return inner.GetAsync(key, offset, length, ct);
        }

        public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public ValueTask DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

        public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken ct) => inner.DeleteManyAsync(keys, ct);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
