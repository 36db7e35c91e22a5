using System.Runtime.CompilerServices;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>
/// DESIGN promise 3: every image an object-store remote ever committed is a prefix of the acknowledged history.
/// A writer rewrites 8 blocks in order, generation after generation, while the remote replicates over a jittery
/// link; afterwards every commit the remote wrote is loaded as an image on its own and must show a state the writer
/// passed through: blocks 0..k-1 at generation g, blocks k..7 at generation g-1.
/// </summary>
[TestClass]
public sealed class PrefixConsistencyTests
{
    private const int Block = 64 * 1024;
    private const int Blocks = 8;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task EveryCommittedImage_IsAStateTheWriterPassedThrough()
    {
        string? bucket = null;
        await using var fx = new VolumeFixture(remotes: 1, blockSize: Block, remoteKind: "folder")
        {
            Replicate = true,
            Linger = TimeSpan.FromMilliseconds(20), // commits often, so the writer is caught at many points
            Wrap = (o, f) =>
            {
                if (o.Role != FacetRole.Remote)
                {
                    return f;
                }
                bucket = o.Path!;
                var facet = new ObjectStoreFacet(o.Name, "folder", new KeepEverything(new FolderObjectStore(bucket)), Block, "prefix");
                return new SimulatedLink(facet, seed: 3) { RoundTrip = TimeSpan.FromMilliseconds(2), Jitter = TimeSpan.FromMilliseconds(3) };
            },
        };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("gen.bin");
        byte[] buf = new byte[Block];
        for (int g = 1; g <= 40; g++)
        {
            for (int b = 0; b < Blocks; b++)
            {
                Array.Fill(buf, (byte)g);
                await v.WriteAsync(id, (long)b * Block, buf);
                await Task.Delay(2); // a paced writer, so commits land between writes at many different points
            }
        }
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)));

        var commits = Directory.GetFiles(Path.Combine(bucket!, "commits")).Select(f => RemoteImage.ParseNumber("commits/" + Path.GetFileName(f))!.Value).Order().ToList();
        Assert.IsTrue(commits.Count >= 10, $"only {commits.Count} commits: the test saw too few images");
        var seen = new HashSet<(int, int)>();
        foreach (long k in commits)
        {
            RemoteImage image = await RemoteImage.LoadAsync(new UpToCommit(new FolderObjectStore(bucket!), k), null, default);
            Assert.AreEqual(k, image.Manifest.Commit);
            int[] values = await BlockValuesAsync(bucket!, image.Manifest);
            // A prefix of the history: values[0..c) == g and values[c..] == g - 1 (0: not written yet).
            int g = values.Length == 0 ? 0 : values[0];
            int cut = values.TakeWhile(x => x == g).Count();
            Assert.IsTrue(values.Skip(cut).All(x => x == g - 1), $"commit {k}: blocks hold generations [{string.Join(",", values)}], not a state the writer passed through");
            seen.Add((g, cut));
        }
        Assert.IsTrue(seen.Count >= 5, "images at several distinct points of the history were checked");
    }

    private static async Task<int[]> BlockValuesAsync(string bucket, RemoteManifest manifest)
    {
        RemoteNode node = manifest.Nodes["gen.bin"];
        var store = new FolderObjectStore(bucket);
        var values = new int[Blocks];
        for (int b = 0; b < Blocks; b++)
        {
            if (b * (long)Block >= node.Length)
            {
                values[b] = 0;
                continue;
            }
            byte[] data = new byte[(int)Math.Min(Block, node.Length - b * (long)Block)];
            if (node.SourceOf(b) is { } source)
            {
                await source.AssembleAsync(data, async (key, n, ct) => await store.GetAsync(key, 0, n, ct), default);
            }
            Assert.IsTrue(data.All(x => x == data[0]), $"block {b} is torn inside one commit");
            values[b] = data[0];
        }
        return values;
    }

    /// <summary>Never deletes, so every committed image stays readable after the run.</summary>
    private sealed class KeepEverything(IObjectStore inner) : IObjectStore
    {
        public string Description => inner.Description;
        public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken ct) => inner.EnsureReadyAsync(createIfMissing, ct);
        public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct) => inner.PutAsync(key, data, ct);
        public ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken ct) => inner.GetAsync(key, offset, length, ct);
        public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);
        public ValueTask DeleteAsync(string key, CancellationToken ct) => ValueTask.CompletedTask;
        public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken ct) => ValueTask.CompletedTask;
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>The store as it stood when commit <paramref name="upTo"/> was the newest.</summary>
    private sealed class UpToCommit(IObjectStore inner, long upTo) : IObjectStore
    {
        public string Description => inner.Description;
        public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken ct) => inner.EnsureReadyAsync(createIfMissing, ct);
        public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct) => throw new InvalidOperationException("read-only view");
        public ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken ct) => inner.GetAsync(key, offset, length, ct);

        public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
        {
            await foreach (ObjectInfo o in inner.ListAsync(prefix, ct))
            {
                bool meta = o.Key.StartsWith(RemoteImage.CommitsPrefix, StringComparison.Ordinal) || o.Key.StartsWith(RemoteImage.CheckpointsPrefix, StringComparison.Ordinal);
                if (!meta || RemoteImage.ParseNumber(o.Key) <= upTo)
                {
                    yield return o;
                }
            }
        }

        public ValueTask DeleteAsync(string key, CancellationToken ct) => throw new InvalidOperationException("read-only view");
        public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken ct) => throw new InvalidOperationException("read-only view");
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
