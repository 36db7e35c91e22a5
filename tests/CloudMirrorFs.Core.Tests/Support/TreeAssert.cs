namespace CloudMirrorFs.Tests.Support;

/// <summary>
/// Compares two folders: same names, same kinds, same file contents, and symbolic links with the same target.
/// Links are compared as links and never followed (a link to a directory is not walked into).
/// </summary>
public static class TreeAssert
{
    private enum Kind { File, Directory, Symlink }

    public static void Equal(string expectedRoot, string actualRoot, string because = "")
    {
        var expected = Walk(expectedRoot);
        var actual = Walk(actualRoot);
        var missing = expected.Keys.Except(actual.Keys).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var extra = actual.Keys.Except(expected.Keys).OrderBy(k => k, StringComparer.Ordinal).ToList();
        Assert.AreEqual(0, missing.Count, $"{because}: missing in {actualRoot}: {string.Join(", ", missing.Take(10))}");
        Assert.AreEqual(0, extra.Count, $"{because}: extra in {actualRoot}: {string.Join(", ", extra.Take(10))}");
        foreach (var (rel, (kind, target)) in expected)
        {
            Assert.AreEqual(kind, actual[rel].Kind, $"{because}: {rel} differs in kind");
            if (kind == Kind.Symlink)
            {
                Assert.AreEqual(target, actual[rel].Target, $"{because}: {rel} is a link to another target");
            }
            else if (kind == Kind.File)
            {
                byte[] a = File.ReadAllBytes(Path.Combine(expectedRoot, rel));
                byte[] b = File.ReadAllBytes(Path.Combine(actualRoot, rel));
                Assert.AreEqual(a.Length, b.Length, $"{because}: {rel} length");
                int diff = a.AsSpan().CommonPrefixLength(b);
                Assert.AreEqual(a.Length, diff, $"{because}: {rel} differs first at byte {diff}");
            }
        }
    }

    /// <summary>Every node under <paramref name="root"/>: kind, and a link's target.</summary>
    private static Dictionary<string, (Kind Kind, string? Target)> Walk(string root)
    {
        var result = new Dictionary<string, (Kind, string?)>(StringComparer.Ordinal);
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(root));
        while (pending.Count > 0)
        {
            foreach (FileSystemInfo i in pending.Pop().EnumerateFileSystemInfos())
            {
                string rel = Path.GetRelativePath(root, i.FullName).Replace('\\', '/');
                if (i.LinkTarget is { } target)
                {
                    result[rel] = (Kind.Symlink, target);
                }
                else if (i is DirectoryInfo d)
                {
                    result[rel] = (Kind.Directory, null);
                    pending.Push(d);
                }
                else
                {
                    result[rel] = (Kind.File, null);
                }
            }
        }
        return result;
    }
}
