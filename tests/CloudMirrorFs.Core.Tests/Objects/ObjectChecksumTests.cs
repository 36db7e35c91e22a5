using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>
/// Bytes of a stored object that change after cmfs wrote them (bit rot on a folder store's disk, a hand edit) must be
/// refused as damage: never served by a degraded read, never written out by a restore.
/// </summary>
[TestClass]
public sealed class ObjectChecksumTests
{
    private const int Block = 64 * 1024;

    private static FacetOptions Options(string bucket, string compression)
        => new() { Name = "vault", Role = FacetRole.Remote, Kind = "folder", Path = bucket, Settings = new Dictionary<string, string> { ["compression"] = compression } };

    private static VolumeOptions Volume => new() { StateDir = "/unused", BlockSize = Block, Facets = [] };

    [TestMethod]
    [DataRow("none")]
    [DataRow("brotli")]
    public async Task ObjectWithOneByteChanged_IsRefusedByReadsAndRestore_NamingTheObject(string compression)
    {
        using var dir = new TempDir("sum");
        string bucket = Path.Combine(dir.Path, "bucket");
        var file = new FileRef(7, "data.bin");
        byte[] content = new byte[3 * Block];
        for (int i = 0; i < content.Length; i++)
        {
            content[i] = (byte)(i * 31 / 7); // compressible, so brotli stores it compressed
        }
        await using (IFacet facet = FacetFactory.Create(Options(bucket, compression), Volume))
        {
            await facet.OpenAsync(default);
            await facet.CreateFileAsync(file, (UnixFileMode)0b110_100_100, default);
            await facet.WriteAsync(file, 0, content, default);
            await facet.CommitAsync(1, default);
        }

        // The object holding the second block: one byte of it flipped, where a failing disk would.
        string[] objects = Directory.GetFiles(Path.Combine(bucket, "data"), "*", SearchOption.AllDirectories);
        Assert.AreEqual(3, objects.Length, string.Join("\n", objects));
        string victim = objects.Single(o => Path.GetFileName(o).StartsWith("0000000000000001.", StringComparison.Ordinal));
        byte[] stored = File.ReadAllBytes(victim);
        stored[stored.Length / 2] ^= 0x10;
        File.WriteAllBytes(victim, stored);
        string key = Path.GetRelativePath(bucket, victim).Replace('\\', '/');

        await using (IFacet facet = FacetFactory.Create(Options(bucket, compression), Volume))
        {
            await facet.OpenAsync(default);
            byte[] first = new byte[Block];
            Assert.AreEqual(Block, await facet.ReadAsync(file, 0, first, default));
            CollectionAssert.AreEqual(content[..Block], first, "the blocks around the damaged one read as written");
            var read = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await facet.ReadAsync(file, Block, new byte[Block], default));
            StringAssert.Contains(read.Message, key);
            StringAssert.Contains(read.Message, "fails its checksum");
        }
        string target = Path.Combine(dir.Path, "restored");
        var restore = await Assert.ThrowsExactlyAsync<MirrorException>(() => RemoteRestore.RestoreAsync(FacetFactory.CreateStore(Options(bucket, compression)), target, null, null, default));
        StringAssert.Contains(restore.Message, key);
        StringAssert.Contains(restore.Message, $"1 block(s) of 1 file(s) that could not be read");
        StringAssert.Contains(restore.Message, $"data.bin at offset {Block}");

        // Everything else was restored; the damaged block holds zeros, never the changed bytes.
        byte[] restored = File.ReadAllBytes(Path.Combine(target, "data.bin"));
        Assert.AreEqual(content.Length, restored.Length);
        CollectionAssert.AreEqual(content[..Block], restored[..Block]);
        Assert.IsTrue(restored[Block..(2 * Block)].All(x => x == 0));
        CollectionAssert.AreEqual(content[(2 * Block)..], restored[(2 * Block)..]);
    }

    [TestMethod]
    public async Task NewRemote_ObjectsCarryAChecksum_ARemoteAnOlderCmfsCreated_KeepsWritingWhatThatCmfsReads()
    {
        using var dir = new TempDir("sum");
        string bucket = Path.Combine(dir.Path, "bucket");
        var file = new FileRef(7, "a.bin");
        await using (IFacet facet = FacetFactory.Create(Options(bucket, "none"), Volume))
        {
            await facet.OpenAsync(default);
            await facet.CreateFileAsync(file, (UnixFileMode)0b110_100_100, default);
            await facet.WriteAsync(file, 0, new byte[Block], default);
            await facet.CommitAsync(1, default);
        }
        string descriptor = Path.Combine(bucket, "volume.json");
        StringAssert.Contains(File.ReadAllText(descriptor), $"\"Format\":{VolumeDescriptor.ChecksumFormat}");
        string[] first = StoredObjects(bucket);
        Assert.IsTrue(first.All(o => File.ReadAllBytes(o)[2] == 2), "a new remote's objects are checksummed");

        // As if an older cmfs had created it: what this build adds stays readable by that cmfs.
        File.WriteAllText(descriptor, File.ReadAllText(descriptor).Replace($"\"Format\":{VolumeDescriptor.ChecksumFormat}", $"\"Format\":{VolumeDescriptor.ExtentFormat}", StringComparison.Ordinal));
        var second = new FileRef(8, "b.bin");
        await using (IFacet facet = FacetFactory.Create(Options(bucket, "none"), Volume))
        {
            await facet.OpenAsync(default);
            await facet.CreateFileAsync(second, (UnixFileMode)0b110_100_100, default);
            await facet.WriteAsync(second, 0, Enumerable.Repeat((byte)5, Block).ToArray(), default);
            await facet.CommitAsync(2, default);
        }
        string[] added = [.. StoredObjects(bucket).Except(first)];
        Assert.IsTrue(added.Length >= 2 && added.All(o => File.ReadAllBytes(o)[2] == 1), "version 1 objects on an older remote: " + string.Join(", ", added));
        StringAssert.Contains(File.ReadAllText(descriptor), $"\"Format\":{VolumeDescriptor.ExtentFormat}", "the descriptor is not raised");

        string target = Path.Combine(dir.Path, "restored");
        await RemoteRestore.RestoreAsync(FacetFactory.CreateStore(Options(bucket, "none")), target, null, null, default);
        CollectionAssert.AreEqual(Enumerable.Repeat((byte)5, Block).ToArray(), File.ReadAllBytes(Path.Combine(target, "b.bin")), "both versions read");
    }

    private static string[] StoredObjects(string bucket)
        => [.. new[] { "data", "commits" }.Select(d => Path.Combine(bucket, d)).Where(Directory.Exists)
            .SelectMany(d => Directory.GetFiles(d, "*", SearchOption.AllDirectories)).Order(StringComparer.Ordinal)];

    [TestMethod]
    public async Task ObjectFromAnOlderBuild_WithoutAChecksum_StillReads()
    {
        using var dir = new TempDir("sum");
        var folder = new FolderObjectStore(Path.Combine(dir.Path, "bucket"));
        await folder.EnsureReadyAsync(createIfMissing: true, default);
        byte[] payload = [.. Enumerable.Range(0, 5000).Select(i => (byte)i)];
        await folder.PutAsync("data/old", (byte[])[(byte)'C', (byte)'M', 1, 0, .. payload], default); // version 1: header, payload
        var codec = new CodecObjectStore(folder, key: null, compress: false);
        CollectionAssert.AreEqual(payload, await codec.GetAsync("data/old", 0, null, default));
        CollectionAssert.AreEqual(payload[100..300], await codec.GetAsync("data/old", 100, 200, default));

        await codec.PutAsync("data/new", payload, default);
        byte[] stored = (await folder.GetAsync("data/new", 0, null, default))!;
        Assert.AreEqual(2, stored[2], "new objects are written at version 2, with a checksum");
        CollectionAssert.AreEqual(payload, await codec.GetAsync("data/new", 0, null, default));
    }
}
