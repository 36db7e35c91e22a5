using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>
/// Seed 000: a write the remote fails goes back to the head of the queue with everything after it; nothing is
/// dropped, nothing is marked NotSynchronised for it, and the retry applies the changes in their order.
/// </summary>
[TestClass]
public sealed class RequeueAtHeadTests
{
    [TestMethod]
    public async Task AWriteFailedInsideABatch_KeepsTheBatchAtTheHead_AndTheRetryKeepsTheOrder()
    {
        const int Piece = 16 * 1024;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: 64 * 1024) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, new byte[8 * Piece]);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        long head = v.GetQueueCursor("remote0")!.Head;

        // 48 writes over 8 pieces, six rounds: each piece's last round must win on the remote.
        FaultInjectingFacet remote = fx.Faults["remote0"];
        remote.FailWrite = (_, _, _) => true;
        var model = new byte[8 * Piece];
        for (int round = 0; round < 6; round++)
        {
            for (int p = 0; p < 8; p++)
            {
                byte[] data = new byte[Piece];
                Array.Fill(data, (byte)(round * 8 + p + 1));
                await v.WriteAsync(id, (long)p * Piece, data);
                data.CopyTo(model, p * Piece);
            }
        }
        QueueCursorInfo waiting = v.GetQueueCursor("remote0")!;
        Assert.AreEqual(head, waiting.Head, "nothing of the outage was committed");
        Assert.IsTrue(waiting.Count >= 48);

        // The next attempt fails at its 20th write, inside the batch, with writes before it in flight or done.
        int calls = 0;
        var failedAt = new TaskCompletionSource<QueueCursorInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        remote.FailWrite = (_, _, _) =>
        {
            int n = Interlocked.Increment(ref calls);
            if (n == 20)
            {
                failedAt.TrySetResult(v.GetQueueCursor("remote0")!);
            }
            return n >= 20 && !release.Task.IsCompleted;
        };
        QueueCursorInfo atFailure = await failedAt.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.AreEqual(head, atFailure.Head, "the failing batch committed nothing");
        await Wait.UntilAsync(() => v.GetFacetState("remote0") == FacetState.Offline, "remote0 Offline after the failed write", TimeSpan.FromSeconds(10));
        QueueCursorInfo after = v.GetQueueCursor("remote0")!;
        Assert.AreEqual(head, after.Head, "the batch is back at the head");
        Assert.AreEqual(waiting.Count, after.Count, "every change still queued, none dropped");
        Assert.IsTrue(after.Active);
        Assert.AreEqual(0, v.GetDirtyCount("remote0"), "a failed write is requeued, not turned into dirty bits");
        Assert.AreNotEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"));

        release.SetResult();
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)), ReplicationTests.Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        CollectionAssert.AreEqual(model, File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "f")), "the retry applied the writes in their order");
        Assert.IsTrue(calls > 20 + 40, $"the retry sent the batch again from its head: {calls} write calls");
    }
}
