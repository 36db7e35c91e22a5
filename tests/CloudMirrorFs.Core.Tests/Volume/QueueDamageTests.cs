using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

/// <summary>A damaged queue segment under a real volume: reported by file and offset, and nothing acknowledged lost.</summary>
[TestClass]
public sealed class QueueDamageTests
{
    [TestMethod]
    public async Task Reopen_DamagedSegment_ReportedByFileAndOffset_RemoteResyncedToTheLocalBytes()
    {
        await using var fx = new VolumeFixture(remotes: 1, queue: new QueueOptions { MemoryLimit = 0, SegmentSize = 1 << 20 });
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("data.bin");
        var rnd = new Random(5);
        for (int i = 0; i < 40; i++)
        {
            byte[] b = new byte[50_000];
            rnd.NextBytes(b);
            await v.WriteAsync(id, i * 50_000L, b);
        }
        await v.RenameAsync("data.bin", "kept.bin");
        await v.DisposeAsync();

        string segment = Directory.GetFiles(fx.Options.QueuePath, "seg-*.cmq").Order().First();
        byte[] bytes = File.ReadAllBytes(segment);
        bytes[bytes.Length / 2] ^= 0x80;
        File.WriteAllBytes(segment, bytes);

        // Opened without replication first: a resync that starts at once replaces the reason with "resync in
        // progress", so reading it after a replicating open raced the replicator.
        v = await fx.OpenAsync();
        QueueCorruption c = v.QueueRecovery!.Corruptions.Single();
        Assert.AreEqual(segment, c.File);
        Assert.IsTrue(c.Offset > 0 && c.Offset <= bytes.Length / 2, $"offset {c.Offset}");
        Assert.IsFalse(c.TornTail);
        Assert.IsTrue(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason!.Contains(segment, StringComparison.Ordinal));
        fx.Replicate = true;
        v = await fx.ReopenAsync();
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationDescribe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"), "after the resync the remote holds every acknowledged byte");
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
    }

    private static string ReplicationDescribe(MirrorVolume v) => Replication.ReplicationTests.Describe(v);
}
