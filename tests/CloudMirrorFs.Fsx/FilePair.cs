using Microsoft.Win32.SafeHandles;

namespace CloudMirrorFs.Fsx;

/// <summary>
/// File fI in both trees: its paths, the handles kept open across operations, and its size as the exerciser's own
/// model has it (every choice is made from the model, never from what the tree under test reports).
/// </summary>
internal sealed class FilePair : IDisposable
{
    /// <summary>The sharing every handle uses, so that the kept and the second handles may coexist.</summary>
    public const FileShare Share = FileShare.ReadWrite | FileShare.Delete;

    public FilePair(int index, string underTestDir, string referenceDir)
    {
        Index = index;
        Name = "f" + index;
        UnderTestPath = Path.Combine(underTestDir, Name);
        ReferencePath = Path.Combine(referenceDir, Name);
        UnderTestTemp = UnderTestPath + TempSuffix;
        ReferenceTemp = ReferencePath + TempSuffix;
    }

    /// <summary>The suffix of the temporary name a rename-swap passes through.</summary>
    public const string TempSuffix = ".fsx-tmp";

    public int Index { get; }

    public string Name { get; }

    public string UnderTestPath { get; }

    public string ReferencePath { get; }

    public string UnderTestTemp { get; }

    public string ReferenceTemp { get; }

    /// <summary>The kept handle in the tree under test; null while closed.</summary>
    public SafeFileHandle? UnderTest { get; set; }

    /// <summary>The kept handle in the reference folder; null while closed.</summary>
    public SafeFileHandle? Reference { get; set; }

    /// <summary>The size the file must have.</summary>
    public long Size { get; set; }

    /// <summary>Closes both kept handles.</summary>
    public void Close()
    {
        UnderTest?.Dispose();
        UnderTest = null;
        Reference?.Dispose();
        Reference = null;
    }

    public void Dispose() => Close();
}
