using CloudMirrorFs.Queue;
using CloudMirrorFs.Replication;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>
/// The replicator's batch shaping: files created and deleted inside one batch are not sent; batches fit the queue's
/// memory; only a trickle is waited for.
/// </summary>
[TestClass]
public sealed class ReplicatorTests
{
    private static Transaction T(TransactionKind kind, long id, string path, string? path2 = null)
        => new() { Kind = kind, FileId = id, Path = path, Path2 = path2, Data = kind == TransactionKind.Write ? new byte[4] : default };

    private static string Shape(IReadOnlyList<Transaction> batch) => string.Join(" ", batch.Select(t => $"{t.Kind}:{t.FileId}"));

    [TestMethod]
    public void WithoutShortLivedFiles_CreateWriteDelete_AllDropped_OthersKeptInOrder()
    {
        Transaction[] batch =
        [
            T(TransactionKind.CreateFile, 2, "a"),
            T(TransactionKind.CreateFile, 3, "keep"),
            T(TransactionKind.Write, 2, "a"),
            T(TransactionKind.Write, 3, "keep"),
            T(TransactionKind.SetLength, 2, "a"),
            T(TransactionKind.DeleteFile, 2, "a"),
            T(TransactionKind.Write, 3, "keep"),
        ];
        Assert.AreEqual("CreateFile:3 Write:3 Write:3", Shape(Replicator.WithoutShortLivedFiles(batch)));
    }

    [TestMethod]
    public void WithoutShortLivedFiles_RenameOrAttributesBetween_KeepsEverything()
    {
        Transaction[] renamed =
        [
            T(TransactionKind.CreateFile, 2, "a"),
            T(TransactionKind.Rename, 9, "d", "e"),
            T(TransactionKind.DeleteFile, 2, "a"),
        ];
        Assert.AreEqual(3, Replicator.WithoutShortLivedFiles(renamed).Count);
        Transaction[] attributes =
        [
            T(TransactionKind.CreateFile, 2, "a"),
            T(TransactionKind.SetAttributes, 2, "a"),
            T(TransactionKind.DeleteFile, 2, "a"),
        ];
        Assert.AreEqual(3, Replicator.WithoutShortLivedFiles(attributes).Count);
    }

    [TestMethod]
    public void WithoutShortLivedFiles_DeleteWithoutCreateInBatch_OrOtherPath_KeepsEverything()
    {
        Transaction[] older = [T(TransactionKind.Write, 2, "a"), T(TransactionKind.DeleteFile, 2, "a")];
        Assert.AreEqual(2, Replicator.WithoutShortLivedFiles(older).Count, "the file existed before the batch: the facet must delete it");
        Transaction[] moved = [T(TransactionKind.CreateFile, 2, "a"), T(TransactionKind.DeleteFile, 2, "b")];
        Assert.AreEqual(2, Replicator.WithoutShortLivedFiles(moved).Count);
    }

    [TestMethod]
    public void BatchBytes_TwoBatchesFitInHalfTheQueueMemory_WithinTheConfiguredCapAndAtLeastOneMiB()
    {
        var options = new ReplicationOptions();
        Assert.AreEqual(16L << 20, Replicator.BatchBytesFor(options, 64L << 20), "the default 64 MiB queue: 16 MiB batches");
        Assert.AreEqual(options.BatchBytes, Replicator.BatchBytesFor(options, 4L << 30), "a large queue: the configured cap");
        Assert.AreEqual(1L << 20, Replicator.BatchBytesFor(options, 1L << 20), "a tiny queue: still 1 MiB");
        Assert.AreEqual(2L << 20, Replicator.BatchBytesFor(options with { BatchBytes = 2L << 20 }, 64L << 20));
    }

    [TestMethod]
    public void IsTrickle_FewSmallRecords_Yes_ManyRecordsOrMuchData_No()
    {
        long batch = 16L << 20;
        Assert.IsTrue(Replicator.IsTrickle(3, 1024, 12_000, batch));
        Assert.IsFalse(Replicator.IsTrickle(1024, 1024, 12_000, batch), "a full batch of records is sent at once");
        Assert.IsFalse(Replicator.IsTrickle(5, 1024, 5L << 20, batch), "five 1 MiB writes are a stream, not a trickle");
    }
}
