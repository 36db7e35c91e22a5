using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

/// <summary>Online verify: stored bytes read and compared block by block, object-store commits and objects included.</summary>
[TestClass]
public sealed class VerifyTests
{
    private const int Block = 64 * 1024;

    private static async Task<byte[]> WriteFileAsync(MirrorVolume v, string path, int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        long id = await v.CreateFileAsync(path);
        await v.WriteAsync(id, 0, data);
        return data;
    }

    [TestMethod]
    public async Task Verify_CleanVolume_ComparesEveryFacetAndFindsNothing()
    {
        await using var fx = new VolumeFixture(locals: 2, remotes: 1, blockSize: Block, remoteKind: "folder") { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("d");
        await WriteFileAsync(v, "d/a.bin", 5 * Block + 123, 1);
        await WriteFileAsync(v, "d/b.bin", Block, 2);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        VerifyReport report = await v.VerifyAsync(null, repair: false);
        Assert.AreEqual(0, report.Differences.Count, string.Join("\n", report.Differences));
        Assert.AreEqual(2 * (6 + 1), report.BlocksCompared, "every block of both files on local1 and on the remote");
        CollectionAssert.AreEquivalent(new[] { "local1", "remote0" }, report.Facets.ToArray());
    }

    [TestMethod]
    public async Task Verify_CorruptedLocalBlock_IsReportedWithFileAndOffset_AndRepairedInPlace()
    {
        await using var fx = new VolumeFixture(locals: 2, blockSize: Block) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        byte[] data = await WriteFileAsync(v, "f.bin", 4 * Block, 3);
        await v.SyncAsync();
        string onDisk = Path.Combine(fx.FacetPath("local1"), "f.bin");
        using (var s = new FileStream(onDisk, FileMode.Open, FileAccess.Write))
        {
            s.Position = (2 * Block) + 77; // bit rot behind the volume's back
            s.WriteByte((byte)(data[(2 * Block) + 77] ^ 0xFF));
        }

        VerifyReport found = await v.VerifyAsync("local1", repair: false);
        Assert.AreEqual(1, found.Differences.Count, string.Join("\n", found.Differences));
        Assert.AreEqual(new VerifyDifference("local1", "f.bin", 2 * Block, "content", false), found.Differences[0]);
        Assert.IsFalse(found.Clean);

        VerifyReport repaired = await v.VerifyAsync("local1", repair: true);
        Assert.IsTrue(repaired.Clean);
        CollectionAssert.AreEqual(data, File.ReadAllBytes(onDisk), "rewritten from the Synchronised facet");
        Assert.AreEqual(0, (await v.VerifyAsync("local1", repair: false)).Differences.Count);
    }

    [TestMethod]
    public async Task Verify_DamagedBlockObject_IsFound_AndRepairedWithNewObjectsAndANewCommit()
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: "folder") { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        byte[] data = await WriteFileAsync(v, "f.bin", 3 * Block, 4);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        string remote = fx.FacetPath("remote0");
        string[] objects = [.. Directory.EnumerateFiles(Path.Combine(remote, "data"), "*", SearchOption.AllDirectories)];
        Assert.IsTrue(objects.Length >= 3, "one object per block");
        byte[] damaged = File.ReadAllBytes(objects[0]);
        damaged[damaged.Length / 2] ^= 0x5A;
        File.WriteAllBytes(objects[0], damaged);
        int commitsBefore = Directory.GetFiles(Path.Combine(remote, "commits")).Length;

        VerifyReport found = await v.VerifyAsync("remote0", repair: false);
        Assert.AreEqual(1, found.Differences.Count, string.Join("\n", found.Differences));
        Assert.AreEqual("f.bin", found.Differences[0].Path);

        VerifyReport repaired = await v.VerifyAsync("remote0", repair: true);
        Assert.IsTrue(repaired.Clean, string.Join("\n", repaired.Differences));
        Assert.AreEqual(0, (await v.VerifyAsync("remote0", repair: false)).Differences.Count, "clean after the repair");
        Assert.IsTrue(Directory.GetFiles(Path.Combine(remote, "commits")).Length > commitsBefore, "the repair is a new commit");
        // Objects are never overwritten: the repair's are new ones, and the damaged one is left as it was until the
        // collection of superseded objects deletes it.
        string[] after = [.. Directory.EnumerateFiles(Path.Combine(remote, "data"), "*", SearchOption.AllDirectories)];
        Assert.IsTrue(after.Except(objects).Any(), "the repair wrote a new object");
        Assert.IsTrue(!File.Exists(objects[0]) || File.ReadAllBytes(objects[0]).SequenceEqual(damaged), "the damaged object was not overwritten in place");
        string restored = await fx.RemoteTreeAsync("remote0");
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(restored, "f.bin")));
    }

    [TestMethod]
    public async Task Verify_WhileWritersWrite_NeverReportsABlockBeingChanged()
    {
        await using var fx = new VolumeFixture(locals: 2, remotes: 1, blockSize: Block, remoteKind: "folder") { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        long[] ids = new long[4];
        for (int i = 0; i < ids.Length; i++)
        {
            await WriteFileAsync(v, $"f{i}", 16 * Block, 10 + i);
            ids[i] = v.LookupId($"f{i}")!.Value;
        }
        using var stop = new CancellationTokenSource();
        Task writers = Task.WhenAll(Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            byte[] buffer = new byte[3 * Block];
            while (!stop.IsCancellationRequested)
            {
                rng.NextBytes(buffer);
                await v.WriteAsync(ids[rng.Next(ids.Length)], rng.Next(0, 13 * Block), buffer.AsMemory(0, rng.Next(1, buffer.Length)));
            }
        })));
        try
        {
            for (int round = 0; round < 3; round++)
            {
                VerifyReport report = await v.VerifyAsync(null, repair: false);
                Assert.AreEqual(0, report.Differences.Count, $"round {round}: " + string.Join("\n", report.Differences.Take(5)));
                Assert.IsTrue(report.BlocksCompared > 0);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await writers;
        }
    }
}
