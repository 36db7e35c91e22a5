using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Host.Tests;

[TestClass]
public sealed class FacetCommandTests
{
    [TestMethod]
    public async Task FacetAdd_ThenResync_BringsTheNewDiskIn_FacetRemove_TakesItOut()
    {
        using var cli = new Cli();
        string cfg = cli.Write("cmfs.json", """
            { "volume": { "stateDir": "st", "blockSize": "64KiB" },
              "facets": [ { "name": "a", "role": "local", "kind": "directory", "path": "a" },
                          { "name": "r", "role": "remote", "kind": "folder", "path": "r" } ] }
            """);
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        byte[] data = new byte[400_000];
        new Random(4).NextBytes(data);
        await using (MirrorVolume v = await MirrorVolume.OpenAsync(VolumeConfigLoader.Load(cfg, needMount: false), runtime: new VolumeRuntimeOptions { Replicate = false }))
        {
            await v.WriteAsync(await v.CreateFileAsync("data.bin"), 0, data);
        }

        var (code, stdout, stderr) = await cli.RunAsync("facet", "add", "--name", "b", "--role", "local", "--kind", "directory", "--path", "b");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "full resync");
        StringAssert.Contains(File.ReadAllText(cfg), "\"b\"");
        (code, _, stderr) = await cli.RunProcessAsync("resync", "--facet", "b", "--timeout", "60");
        Assert.AreEqual(0, code, stderr);
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(cli.Dir, "b", "data.bin")), "the new facet was rebuilt");

        (code, _, stderr) = await cli.RunAsync("facet", "add", "--name", "c", "--role", "local", "--kind", "directory", "--path", "a/inside");
        Assert.AreEqual(2, code, "a facet inside another is refused before the file is touched");
        StringAssert.Contains(stderr, "facets");
        Assert.IsFalse(File.ReadAllText(cfg).Contains("inside", StringComparison.Ordinal));

        (code, stdout, stderr) = await cli.RunAsync("facet", "remove", "--name", "b");
        Assert.AreEqual(0, code, stderr);
        Assert.IsFalse(File.ReadAllText(cfg).Contains("\"b\"", StringComparison.Ordinal));
        Assert.IsTrue(File.Exists(Path.Combine(cli.Dir, "b", "data.bin")), "the removed facet's data is left in place");
        var status = await cli.RunAsync("status", "--json");
        Assert.AreEqual(0, status.Code, status.Err);
        Assert.IsFalse(status.Out.Contains("\"name\": \"b\"", StringComparison.Ordinal));

        (code, _, stderr) = await cli.RunAsync("facet", "remove", "--name", "a");
        Assert.AreEqual(2, code, "the last local facet cannot be removed");
        (code, _, _) = await cli.RunAsync("facet", "remove", "--name", "zz");
        Assert.AreEqual(2, code);
    }
}
