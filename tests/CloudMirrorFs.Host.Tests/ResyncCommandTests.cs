using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Host.Tests;

[TestClass]
public sealed class ResyncCommandTests
{
    private const string TwoLocals = """
        { "volume": { "stateDir": "st", "blockSize": "64KiB" },
          "facets": [ { "name": "a", "role": "local", "kind": "directory", "path": "a" },
                      { "name": "b", "role": "local", "kind": "directory", "path": "b" } ] }
        """;

    [TestMethod]
    public async Task Resync_Full_OfAnEmptiedLocalFacet_RebuildsItWithProgressLines()
    {
        using var cli = new Cli();
        string cfg = cli.Write("cmfs.json", TwoLocals);
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        byte[] data = new byte[1_500_000];
        new Random(5).NextBytes(data);
        await using (MirrorVolume v = await MirrorVolume.OpenAsync(VolumeConfigLoader.Load(cfg, needMount: false), runtime: new VolumeRuntimeOptions { Replicate = false }))
        {
            await v.CreateDirectoryAsync("x");
            long id = await v.CreateFileAsync("x/data.bin");
            await v.WriteAsync(id, 0, data);
            await v.CreateSymlinkAsync("x/link", "data.bin");
        }
        Directory.Delete(Path.Combine(cli.Dir, "b"), recursive: true); // the second disk is lost
        Directory.CreateDirectory(Path.Combine(cli.Dir, "b"));

        var (code, stdout, stderr) = await cli.RunProcessAsync("resync", "--facet", "b", "--full", "--timeout", "60");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "Synchronised");
        StringAssert.Contains(stderr, "resync b: ", "plain progress lines when the output is redirected");
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(cli.Dir, "b", "x", "data.bin")));
        Assert.AreEqual("data.bin", new FileInfo(Path.Combine(cli.Dir, "b", "x", "link")).LinkTarget);
        var status = await cli.RunAsync("status", "--json");
        StringAssert.Contains(status.Out, "\"name\": \"b\"");
        Assert.IsFalse(status.Out.Contains("notSynchronised", StringComparison.OrdinalIgnoreCase), status.Out);
    }

    [TestMethod]
    public async Task Resync_UnknownFacet_ExitsTwoNamingTheFacets()
    {
        using var cli = new Cli();
        cli.Write("cmfs.json", TwoLocals);
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        var (code, _, stderr) = await cli.RunAsync("resync", "--facet", "c");
        Assert.AreEqual(2, code);
        StringAssert.Contains(stderr, "no such facet");
        StringAssert.Contains(stderr, "a, b");
    }
}
