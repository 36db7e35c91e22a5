using CloudMirrorFs.Queue;

namespace CloudMirrorFs.Tests.Queue;

[TestClass]
public sealed class FileWatermarksTests
{
    [TestMethod]
    public void ManyFilesAndNoFlush_StayBounded_AndNoFileIsEverUnderstated()
    {
        // A program writing a million files and fsyncing none must not grow the queue's per-file marks for ever; a
        // file's barrier may then flush more than it needs, never less.
        var marks = new FileWatermarks();
        for (long f = 1; f <= 3 * FileWatermarks.Bound; f++)
        {
            marks.Set(f, f * 10, covered: _ => false);
            Assert.IsTrue(marks.Count <= FileWatermarks.Bound, $"{marks.Count} files held after {f}");
        }
        for (long f = 1; f <= 3 * FileWatermarks.Bound; f++)
        {
            Assert.IsTrue(marks.Of(f) >= f * 10, $"file {f}: {marks.Of(f)}");
        }
        Assert.AreEqual(0, new FileWatermarks().Of(7), "a file never written needs nothing");
    }

    [TestMethod]
    public void FilesAFlushCovered_AreForgotten_AtTheBound_BeforeAnyFallsBackToTheFloor()
    {
        var marks = new FileWatermarks();
        long flushed = 0;
        for (long f = 1; f <= FileWatermarks.Bound + 10; f++)
        {
            marks.Set(f, f, covered: p => p <= flushed);
            if (f == FileWatermarks.Bound)
            {
                flushed = f; // a barrier covered every file so far
            }
        }
        Assert.AreEqual(10, marks.Count, "the covered ones went; the new ones stay, each at its own position");
        Assert.AreEqual(0, marks.Of(5), "a covered file needs nothing");
        Assert.AreEqual(FileWatermarks.Bound + 3, marks.Of(FileWatermarks.Bound + 3));
    }
}
