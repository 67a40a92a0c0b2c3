//! LFW-style pair lists.
//!
//! First line: `N` (View 1: N matched pairs, then N mismatched) or `FOLDS N` (View 2: FOLDS blocks, each N matched
//! then N mismatched). Then one pair per line: `name<TAB>i<TAB>j` (matched, images i and j of `name`) or
//! `name1<TAB>i<TAB>name2<TAB>j` (mismatched). Images live at `DIR/<name>/<name>_<NNNN>.jpg`.

use std::path::{Path, PathBuf};

use super::EvalError;

/// One image: a person's name and the image's 1-based number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// Person's name as in the folder name (`Aaron_Peirsol`).
    pub name: String,
    /// 1-based image number.
    pub number: u32,
}

impl ImageRef {
    /// The image file under an LFW images folder: `dir/<name>/<name>_<NNNN>.jpg`.
    pub fn path(&self, images_dir: &Path) -> PathBuf {
        images_dir
            .join(&self.name)
            .join(format!("{}_{:04}.jpg", self.name, self.number))
    }
}

/// One pair of images with its ground truth and fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// First image.
    pub a: ImageRef,
    /// Second image.
    pub b: ImageRef,
    /// Both images show the same person.
    pub same: bool,
    /// 0-based fold (always 0 in a single-block file).
    pub fold: usize,
}

/// A parsed pairs file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairList {
    /// The pairs in file order.
    pub pairs: Vec<Pair>,
    /// Number of folds the header announced (1 for an `N` header).
    pub folds: usize,
}

impl PairList {
    /// Every distinct image the pairs name, sorted.
    pub fn images(&self) -> Vec<ImageRef> {
        let mut all: Vec<ImageRef> = self
            .pairs
            .iter()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Reads and parses a pairs file.
pub fn read(path: &Path) -> Result<PairList, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse(&text)
}

fn positive(s: &str) -> Option<usize> {
    s.parse::<usize>().ok().filter(|&n| n > 0)
}

fn image_number(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|&n| n > 0)
}

/// Parses the text of a pairs file, checking the header's block structure and count.
pub fn parse(text: &str) -> Result<PairList, EvalError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
    let fields: Vec<&str> = header.split_whitespace().collect();
    let (folds, per_class) = match fields.as_slice() {
        [n] => positive(n).map(|n| (1, n)),
        [f, n] => positive(f).zip(positive(n)),
        _ => None,
    }
    .ok_or_else(|| EvalError::Header {
        found: header.to_string(),
    })?;

    let mut pairs = Vec::with_capacity(2 * folds * per_class);
    for (index, (line_no, line)) in lines.enumerate() {
        let line_no = line_no + 1;
        let bad = || EvalError::PairLine {
            line: line_no,
            found: line.to_string(),
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        let (a, b, same) = match f.as_slice() {
            [name, i, j] => {
                let (i, j) = image_number(i).zip(image_number(j)).ok_or_else(bad)?;
                let name = name.to_string();
                (
                    ImageRef {
                        name: name.clone(),
                        number: i,
                    },
                    ImageRef { name, number: j },
                    true,
                )
            }
            [n1, i, n2, j] => {
                let (i, j) = image_number(i).zip(image_number(j)).ok_or_else(bad)?;
                (
                    ImageRef {
                        name: n1.to_string(),
                        number: i,
                    },
                    ImageRef {
                        name: n2.to_string(),
                        number: j,
                    },
                    false,
                )
            }
            _ => return Err(bad()),
        };
        let fold = index / (2 * per_class);
        let expect_same = index % (2 * per_class) < per_class;
        if fold < folds && same != expect_same {
            let expected = if expect_same { "matched" } else { "mismatched" };
            return Err(EvalError::PairKind {
                line: line_no,
                expected,
            });
        }
        pairs.push(Pair { a, b, same, fold });
    }
    if pairs.len() != 2 * folds * per_class {
        return Err(EvalError::PairCount {
            expected: 2 * folds * per_class,
            found: pairs.len(),
        });
    }
    Ok(PairList { pairs, folds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_view1_header_and_both_line_kinds() {
        let text = "2\nAlice\t1\t2\nBob\t3\t4\nAlice\t1\tBob\t2\nCarol\t10\tDave\t1\n";
        let list = parse(text).unwrap();
        assert_eq!(list.folds, 1);
        assert_eq!(list.pairs.len(), 4);
        assert_eq!(
            list.pairs[0].a,
            ImageRef {
                name: "Alice".into(),
                number: 1
            }
        );
        assert_eq!(
            list.pairs[0].b,
            ImageRef {
                name: "Alice".into(),
                number: 2
            }
        );
        assert!(list.pairs[1].same && !list.pairs[2].same);
        assert_eq!(
            list.pairs[3].b,
            ImageRef {
                name: "Dave".into(),
                number: 1
            }
        );
        assert!(list.pairs.iter().all(|p| p.fold == 0));
        // Alice_1, Alice_2, Bob_2, Bob_3, Bob_4, Carol_10, Dave_1.
        assert_eq!(list.images().len(), 7);
    }

    #[test]
    fn parses_view2_folds() {
        let text = "2 1\nA\t1\t2\nA\t1\tB\t1\nC\t1\t2\nC\t1\tD\t3\n";
        let list = parse(text).unwrap();
        assert_eq!(list.folds, 2);
        let folds: Vec<usize> = list.pairs.iter().map(|p| p.fold).collect();
        assert_eq!(folds, vec![0, 0, 1, 1]);
    }

    #[test]
    fn image_path_is_zero_padded() {
        let r = ImageRef {
            name: "Aaron_Peirsol".into(),
            number: 3,
        };
        assert_eq!(
            r.path(Path::new("/d")),
            PathBuf::from("/d/Aaron_Peirsol/Aaron_Peirsol_0003.jpg")
        );
    }

    #[test]
    fn bad_files_are_typed_errors() {
        assert!(matches!(parse(""), Err(EvalError::Header { .. })));
        assert!(matches!(parse("zero\n"), Err(EvalError::Header { .. })));
        assert!(matches!(parse("0\n"), Err(EvalError::Header { .. })));
        assert!(matches!(
            parse("1\nA\t1\n"),
            Err(EvalError::PairLine { line: 2, .. })
        ));
        assert!(matches!(
            parse("1\nA\tx\t2\nA\t1\tB\t1\n"),
            Err(EvalError::PairLine { line: 2, .. })
        ));
        assert!(matches!(
            parse("1\nA\t0\t2\nA\t1\tB\t1\n"),
            Err(EvalError::PairLine { line: 2, .. })
        ));
        assert!(matches!(
            parse("1\nA\t1\tB\t1\nA\t1\t2\n"),
            Err(EvalError::PairKind {
                line: 2,
                expected: "matched"
            })
        ));
        assert!(matches!(
            parse("2\nA\t1\t2\nA\t1\tB\t1\n"),
            Err(EvalError::PairKind { line: 3, .. })
        ));
        assert!(matches!(
            parse("1\nA\t1\t2\n"),
            Err(EvalError::PairCount {
                expected: 2,
                found: 1
            })
        ));
        assert!(matches!(
            parse("1\nA\t1\t2\nA\t1\tB\t1\nC\t1\t2\n"),
            Err(EvalError::PairCount {
                expected: 2,
                found: 3
            })
        ));
        let missing = read(Path::new("/nonexistent/pairs.txt"));
        assert!(matches!(missing, Err(EvalError::Read { .. })));
    }
}
