"""Plaintext reference for tests/integration/lr_test.c: sklearn's breast-cancer
data set split between two parties, and logistic regression trained with the
schedule argot uses (standardisation on the training rows, an unpenalised
intercept, mini-batch SGD over the rows in key order, the exact sigmoid).

  lr_ref.py split DIR           writes DIR/{a,b}_{train,test}.csv (400 training
                                rows, 169 test rows; alice has features 0-14 and
                                the key first, bob the label, features 15-29 and
                                the key last, his rows in reverse order)
  lr_ref.py ref DIR EPOCHS BATCH LR L2 SCORES.csv
                                prints: reference accuracy and AUC on the test
                                rows, then those of SCORES.csv (id,score), then
                                the largest difference between the two scores
"""
import os
import sys

import numpy as np


def load():
    import sklearn
    path = os.path.join(os.path.dirname(sklearn.__file__), 'datasets', 'data',
                        'breast_cancer.csv')
    rows = [line.strip().split(',') for line in open(path)][1:]
    X = np.array([[float(v) for v in r[:30]] for r in rows])
    y = np.array([int(r[30]) for r in rows])
    perm = np.random.RandomState(7).permutation(len(y))
    return X[perm], y[perm]


def split(d):
    X, y = load()
    names = ['f%02d' % j for j in range(30)]
    for part, lo, hi in (('train', 0, 400), ('test', 400, len(y))):
        with open(os.path.join(d, 'a_%s.csv' % part), 'w') as f:
            f.write('id,' + ','.join(names[:15]) + '\n')
            for i in range(lo, hi):
                f.write('r%03d,' % i + ','.join(repr(v) for v in X[i, :15]) + '\n')
        with open(os.path.join(d, 'b_%s.csv' % part), 'w') as f:
            f.write('y,' + ','.join(names[15:]) + ',id\n')
            for i in reversed(range(lo, hi)):
                f.write('%d,' % y[i] + ','.join(repr(v) for v in X[i, 15:]) + ',r%03d\n' % i)


def ref(epochs, bs, lr, l2, scores):
    from sklearn.metrics import roc_auc_score
    X, y = load()
    Xtr, ytr, Xte, yte = X[:400], y[:400], X[400:], y[400:]
    mu, sd = Xtr.mean(0), Xtr.std(0)
    Z = np.column_stack([(Xtr - mu) / sd, np.ones(len(ytr))])
    Zt = np.column_stack([(Xte - mu) / sd, np.ones(len(yte))])
    w = np.zeros(31)
    pen = np.ones(31)
    pen[30] = 0
    for _ in range(epochs):
        for s in range(0, len(ytr), bs):
            xb, yb = Z[s:s + bs], ytr[s:s + bs]
            p = 1 / (1 + np.exp(-xb @ w))
            w = w - lr / len(yb) * (xb.T @ (p - yb)) - lr * l2 * pen * w
    pr = 1 / (1 + np.exp(-Zt @ w))
    got = {}
    for line in list(open(scores))[1:]:
        k, v = line.strip().split(',')
        got[k] = float(v)
    ps = np.array([got['r%03d' % i] for i in range(400, len(y))])

    def acc(p):
        return float(((p > 0.5) == yte).mean())
    print('%.6f %.6f %.6f %.6f %.6f' % (acc(pr), roc_auc_score(yte, pr), acc(ps),
                                        roc_auc_score(yte, ps), np.abs(ps - pr).max()))


if sys.argv[1] == 'split':
    split(sys.argv[2])
else:
    ref(int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7])
