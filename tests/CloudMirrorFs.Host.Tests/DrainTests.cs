using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Host.Tests;

[TestClass]
public sealed class DrainTests
{
    private static async Task WriteBacklogAsync(string dir)
    {
        CloudMirrorFs.Options.VolumeOptions options = VolumeConfigLoader.EmbeddedDefault(dir);
        await using MirrorVolume v = await MirrorVolume.OpenAsync(options, runtime: new VolumeRuntimeOptions { Replicate = false });
        await v.CreateDirectoryAsync("docs");
        long id = await v.CreateFileAsync("docs/report.bin");
        byte[] data = new byte[700_000];
        new Random(1).NextBytes(data);
        await v.WriteAsync(id, 0, data);
        await v.RenameAsync("docs/report.bin", "docs/final.bin");
    }

    [TestMethod]
    public async Task Drain_OnAFullDisk_SaysSoAndWhatToDo_NoStackTrace()
    {
        // The embedded default keeps state, local and remote under ./.cmfs: one disk. Fill it, then drain offline.
        using var cli = new Cli();
        using var disk = new SmallDisk(16, Path.Combine(cli.Dir, ".cmfs"));
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        await WriteBacklogAsync(cli.Dir);
        disk.Ballast();

        var (code, stdout, stderr) = await cli.RunAsync("drain", "--timeout", "5");
        Assert.AreEqual(1, code, stdout + stderr);
        StringAssert.Contains(stderr, "free space", stderr);
        StringAssert.Contains(stderr.ToLowerInvariant(), "no space left", stderr);
        Assert.IsFalse(stderr.Contains("   at ", StringComparison.Ordinal), "no stack trace: " + stderr);
    }

    [TestMethod]
    public async Task Drain_Backlog_ExitsZeroAndTheRemoteHoldsEverything()
    {
        using var cli = new Cli();
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        await WriteBacklogAsync(cli.Dir);
        var status = await cli.RunAsync("status", "--json");
        StringAssert.Contains(status.Out, "\"queuedEntries\": 4", "the backlog is visible before the drain");

        var (code, stdout, stderr) = await cli.RunProcessAsync("drain", "--timeout", "60");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "drained");
        // The embedded default's remote is a folder object store: read it back the way a new machine would.
        var restore = await cli.RunProcessAsync("restore", "--facet", "remote", "--to", "back");
        Assert.AreEqual(0, restore.Code, restore.Err);
        string local = Path.Combine(cli.Dir, ".cmfs", "local", "docs", "final.bin");
        CollectionAssert.AreEqual(File.ReadAllBytes(local), File.ReadAllBytes(Path.Combine(cli.Dir, "back", "docs", "final.bin")));
        Assert.IsFalse(File.Exists(Path.Combine(cli.Dir, "back", "docs", "report.bin")));
    }

    [TestMethod]
    public async Task Drain_RemoteUnreachable_ExitsOneAfterTheTimeout_NamingTheFacet()
    {
        using var cli = new Cli();
        string cfg = cli.Write("cmfs.json", """
            { "volume": { "stateDir": "st" },
              "facets": [ { "name": "here", "role": "local", "kind": "directory", "path": "here" },
                          { "name": "gone", "role": "remote", "kind": "directory", "path": "gone", "createIfMissing": false } ] }
            """);
        Directory.CreateDirectory(Path.Combine(cli.Dir, "gone"));
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        Directory.Delete(Path.Combine(cli.Dir, "gone"));
        var (code, _, stderr) = await cli.RunAsync("drain", "--timeout", "1.5");
        Assert.AreEqual(1, code);
        StringAssert.Contains(stderr, "not drained");
        StringAssert.Contains(stderr, "gone");
    }

    [TestMethod]
    public async Task Drain_BadTimeout_ExitsTwo()
    {
        using var cli = new Cli();
        Assert.AreEqual(2, (await cli.RunAsync("drain", "--timeout", "soon")).Code);
        Assert.AreEqual(2, (await cli.RunAsync("drain", "--timeout", "-3")).Code);
    }
}
