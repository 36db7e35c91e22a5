using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Host.Tests;

[TestClass]
public sealed class VerifyCommandTests
{
    [TestMethod]
    public async Task Verify_FindsBitRotNamingFileAndOffset_RepairFixesIt_ExitCodesFollow()
    {
        using var cli = new Cli();
        string cfg = cli.Write("cmfs.json", """
            { "volume": { "stateDir": "st", "blockSize": "64KiB" },
              "facets": [ { "name": "a", "role": "local", "kind": "directory", "path": "a" },
                          { "name": "b", "role": "local", "kind": "directory", "path": "b" } ] }
            """);
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        byte[] data = new byte[300_000];
        new Random(9).NextBytes(data);
        await using (MirrorVolume v = await MirrorVolume.OpenAsync(VolumeConfigLoader.Load(cfg, needMount: false), runtime: new VolumeRuntimeOptions { Replicate = false }))
        {
            long id = await v.CreateFileAsync("data.bin");
            await v.WriteAsync(id, 0, data);
        }
        Assert.AreEqual(0, (await cli.RunProcessAsync("verify")).Code, "a clean volume verifies");
        string onDisk = Path.Combine(cli.Dir, "b", "data.bin");
        byte[] rotten = File.ReadAllBytes(onDisk);
        rotten[200_000] ^= 0x01;
        File.WriteAllBytes(onDisk, rotten);

        var (code, stdout, stderr) = await cli.RunProcessAsync("verify", "--facet", "b");
        Assert.AreEqual(1, code, stdout + stderr);
        StringAssert.Contains(stdout, "b: data.bin at offset 196608: content");
        (code, stdout, stderr) = await cli.RunProcessAsync("verify", "--repair");
        Assert.AreEqual(0, code, stdout + stderr);
        StringAssert.Contains(stdout, "(repaired)");
        CollectionAssert.AreEqual(data, File.ReadAllBytes(onDisk));
        Assert.AreEqual(0, (await cli.RunProcessAsync("verify")).Code);
        Assert.AreEqual(2, (await cli.RunAsync("verify", "--facet", "zz")).Code);
    }
}
