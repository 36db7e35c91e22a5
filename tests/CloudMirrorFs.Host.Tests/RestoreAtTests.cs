using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Host.Tests;

/// <summary><c>cmfs restore --at</c>: an older image, still within <c>retention</c>, rebuilt from the remote alone.</summary>
[TestClass]
public sealed class RestoreAtTests
{
    [TestMethod]
    public async Task RestoreAt_ATimeBetweenTwoVersions_GivesTheOlderTree_WithoutAtTheNewest()
    {
        using var cli = new Cli();
        string cfg = cli.Write("cmfs.json", """
            { "volume": { "stateDir": "st" },
              "facets": [ { "name": "here", "role": "local", "kind": "directory", "path": "here" },
                          { "name": "usb", "role": "remote", "kind": "folder", "path": "usb", "retention": "1h" } ] }
            """);
        async Task WriteAsync(string text, bool create)
        {
            await using MirrorVolume v = await MirrorVolume.OpenAsync(VolumeConfigLoader.Load(cfg, needMount: false));
            long id = create ? await v.CreateFileAsync("note.txt") : v.LookupId("note.txt")!.Value;
            await v.SetLengthAsync(id, 0);
            await v.WriteAsync(id, 0, System.Text.Encoding.UTF8.GetBytes(text));
            if (!create)
            {
                await v.CreateFileAsync("added-later.txt");
            }
            Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        }
        await WriteAsync("first version", create: true);
        await Task.Delay(1100);
        string between = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);
        await Task.Delay(1100);
        await WriteAsync("second version", create: false);

        var (code, _, stderr) = await cli.RunAsync("restore", "--facet", "usb", "--to", "old", "--at", between);
        Assert.AreEqual(0, code, stderr);
        Assert.AreEqual("first version", File.ReadAllText(Path.Combine(cli.Dir, "old", "note.txt")));
        Assert.IsFalse(File.Exists(Path.Combine(cli.Dir, "old", "added-later.txt")), "the older image has no later file");
        (code, _, stderr) = await cli.RunAsync("restore", "--facet", "usb", "--to", "new");
        Assert.AreEqual(0, code, stderr);
        Assert.AreEqual("second version", File.ReadAllText(Path.Combine(cli.Dir, "new", "note.txt")));
        Assert.IsTrue(File.Exists(Path.Combine(cli.Dir, "new", "added-later.txt")));
    }
}
